"""Lua functions of events and logs (the job helpers of the prelude included).

Events: ``event:<id>`` hash, ``events`` (ids by ``emitted_at``), ``ev:pending`` /
``ev:unhandled`` (ids by ``emitted_at``), ``evkey`` (idempotency key → newest event
id); an emit keeps its answer, a redispatch and a batch of log records their mark,
under ``once:<token>`` (see :mod:`.lua_jobs`). Logs: ``logs`` (cjson records scored by
id), ``joblogs:<job>`` (a job's record ids), ``logbytes``.
"""

from __future__ import annotations

BODIES: dict[str, str] = {
    # ARGV: now, dedupe_window, nevents, events (id, name, data, key, source)...,
    #       ndispatch, then per dispatch job: job, ncovered, covered ids..., token (last)
    "insert_events": r"""
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the call's token keeps the first answer, and the events are not
-- written again (back to pending, dispatched since) nor their dispatch jobs refused.
local once = P..'once:'..ARGV[#ARGV]
local answer = redis.call('GET', once)
if answer then return cjson.decode(answer) end
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local ne = tonumber(ARGV[4])
local at = 5
local ids, rows, written, seen = {}, {}, {}, {}
for i = 1, ne do
  local e = {id=ARGV[at], name=ARGV[at+1], data=ARGV[at+2], key=opt(ARGV[at+3]),
             source=ARGV[at+4]}
  at = at + 5
  local earlier = nil
  if e.key then
    earlier = seen[e.key]
    if not earlier then
      local newest = redis.call('HGET', P..'evkey', e.key)
      if newest then
        local emitted = redis.call('HGET', P..'event:'..newest, 'emitted_at')
        if emitted and tonumber(emitted) > now - window then earlier = newest end
      end
    end
  end
  if earlier then
    ids[#ids + 1] = earlier
  else
    if e.key then seen[e.key] = e.id end
    ids[#ids + 1] = e.id
    written[e.id] = true
    rows[#rows + 1] = e
  end
end
if #rows == 0 then
  redis.call('SET', once, cjson.encode(ids), 'EX', ONCE_SECONDS)
  return ids
end
local waiting = redis.call('ZRANGEBYSCORE', P..'dispatch', '-inf', now, 'LIMIT', 0, 1)[1]
local jobs, owner = {}, {}
local nd = tonumber(ARGV[at])
at = at + 1
for i = 1, nd do
  local list
  list, at = read_jobs(at, 1)
  local job = list[1]
  local covered = {}
  for k = 1, tonumber(ARGV[at]) do covered[k] = ARGV[at + k] end
  at = at + 1 + #covered
  local any = false
  for _, c in ipairs(covered) do if written[c] then any = true end end
  if any then
    local shared = (tonumber(job.run_at) <= now) and waiting or nil
    if not shared then jobs[#jobs + 1] = job end
    for _, c in ipairs(covered) do owner[c] = shared or job.id end
  end
end
local problem = refuse(jobs, 0)
if problem then return redis.error_reply(problem) end
for _, e in ipairs(rows) do
  local key = P..'event:'..e.id
  local fields = {'id', e.id, 'name', e.name, 'data', e.data, 'emitted_at', ARGV[2],
    'source', e.source, 'status', 'pending', 'handlers', 0, 'deliveries', 0}
  if e.key then fields[#fields+1] = 'key'; fields[#fields+1] = e.key end
  if owner[e.id] then fields[#fields+1] = 'dispatch_job'; fields[#fields+1] = owner[e.id] end
  redis.call('HSET', key, unpack(fields))
  redis.call('ZADD', P..'events', now, e.id)
  redis.call('ZADD', P..'ev:pending', now, e.id)
  if e.key then redis.call('HSET', P..'evkey', e.key, e.id) end
end
for _, j in ipairs(jobs) do insert(j, now) end
redis.call('SET', once, cjson.encode(ids), 'EX', ONCE_SECONDS)
return ids
""",
    # ARGV: at, nevents, per event: id, njobs, jobs..., nsettle, settle ids...
    "fan_out": r"""
local now = tonumber(ARGV[2])
local ne = tonumber(ARGV[3])
local at = 4
local plan = {}
for i = 1, ne do
  local id = ARGV[at]
  local jobs
  jobs, at = read_jobs(at + 2, tonumber(ARGV[at + 1]))
  plan[i] = {id=id, jobs=jobs}
end
local settle = {}
for k = 1, tonumber(ARGV[at]) do settle[ARGV[at + k]] = true end
local chosen, all = {}, {}
for _, p in ipairs(plan) do
  if redis.call('HGET', P..'event:'..p.id, 'status') == 'pending' then
    chosen[#chosen + 1] = p
    for _, j in ipairs(p.jobs) do all[#all + 1] = j end
  end
end
local problem = refuse(all, 0)
if problem then return redis.error_reply(problem) end
local done = {}
for _, p in ipairs(chosen) do
  local status = (#p.jobs > 0) and 'dispatched' or 'unhandled'
  redis.call('HSET', P..'event:'..p.id, 'status', status, 'dispatched_at', ARGV[2],
             'handlers', #p.jobs, 'deliveries', 1)
  redis.call('ZREM', P..'ev:pending', p.id)
  if status == 'unhandled' then
    redis.call('ZADD', P..'ev:unhandled', redis.call('ZSCORE', P..'events', p.id) or now, p.id)
  end
  done[#done + 1] = p.id
  done[#done + 1] = #p.jobs
end
for _, j in ipairs(all) do insert(j, now) end
for _, p in ipairs(chosen) do
  if settle[p.id] then
    local h = get(p.id)
    if h and WAITING[h.state] then
      unwait(h)
      redis.call('HSET', P..'job:'..p.id, 'finished_at', ARGV[2],
                 'reason', 'event dispatched by another dispatch job')
      restate(h, 'completed', now)
    end
  end
end
return done
""",
    # ARGV: event_id, now, only_dead (0/1), njobs, jobs...
    "add_deliveries": r"""
-- Not written: a job whose id exists (the same replay ran before) and, with only_dead,
-- one whose handler's newest job of the event (by created_at, then rowid, as the
-- outcomes read it) is not dead: another replay delivered to it.
local id, now = ARGV[2], tonumber(ARGV[3])
local given = read_jobs(6, tonumber(ARGV[5]))
local newest = {}
if ARGV[4] == '1' then
  local members = redis.call('ZRANGE', P..'evjobs:'..id, 0, -1, 'WITHSCORES')
  local best = {}
  for i = 1, #members, 2 do
    local f = redis.call('HMGET', P..'job:'..members[i], 'task', 'state', 'created_at')
    if f[1] then
      local order = {tonumber(f[3]) or 0, tonumber(members[i + 1])}
      local b = best[f[1]]
      if not b or order[1] > b[1] or (order[1] == b[1] and order[2] > b[2]) then
        best[f[1]] = order
        newest[f[1]] = f[2]
      end
    end
  end
end
local jobs = {}
for _, j in ipairs(given) do
  if redis.call('EXISTS', P..'job:'..j.id) == 0
     and (ARGV[4] ~= '1' or newest[j.task] == 'dead') then
    jobs[#jobs + 1] = j
  end
end
if #jobs == 0 then return 0 end
local problem = refuse(jobs, 0)
if problem then return redis.error_reply(problem) end
local key = P..'event:'..id
if redis.call('EXISTS', key) == 1 then
  redis.call('HINCRBY', key, 'deliveries', 1)
  local handlers = tonumber(redis.call('HGET', key, 'handlers') or 0)
  if #jobs > handlers then redis.call('HSET', key, 'handlers', #jobs) end
  if redis.call('HGET', key, 'status') == 'unhandled' then
    redis.call('ZREM', P..'ev:unhandled', id)
  end
  redis.call('ZREM', P..'ev:pending', id)
  redis.call('HSET', key, 'status', 'dispatched')
  redis.call('HSETNX', key, 'dispatched_at', ARGV[3])
end
for _, j in ipairs(jobs) do insert(j, now) end
return #jobs
""",
    # ARGV: event_id, dispatch_job, now, token
    "redispatch_event": r"""
local id, job, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the call's token says so, and the dispatch job it made due again is
-- neither refused as busy nor, once it ran, made due a second time.
local once = P..'once:'..ARGV[5]
if redis.call('EXISTS', once) == 1 then return 1 end
local h = get(job)
if not h then return redis.error_reply('INVALID gone') end
if not FINAL[h.state] then return redis.error_reply('INVALID ' .. h.state) end
local key = P..'event:'..id
if redis.call('EXISTS', key) == 1 then
  redis.call('HSET', key, 'status', 'pending')
  redis.call('ZREM', P..'ev:unhandled', id)
  redis.call('ZADD', P..'ev:pending', redis.call('ZSCORE', P..'events', id) or now, id)
end
retry_now(h, now, 'event replayed by hand')
redis.call('SET', once, 1, 'EX', ONCE_SECONDS)
return 1
""",
    # ARGV: trim_to, count, then per record: created_at, level, logger, message, job_id,
    #       task, worker; token (last)
    "write_logs": r"""
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the call's token says so, and the records are not stored twice.
local once = P..'once:'..ARGV[#ARGV]
if redis.call('EXISTS', once) == 1 then return tonumber(ARGV[3]) end
local trim = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local b = 4 + i * 7
  local id = redis.call('INCR', P..'logseq')
  local job = opt(ARGV[b + 4])
  local row = cjson.encode({id, tonumber(ARGV[b]), tonumber(ARGV[b + 1]), ARGV[b + 2],
    ARGV[b + 3], job or cjson.null, opt(ARGV[b + 5]) or cjson.null,
    opt(ARGV[b + 6]) or cjson.null})
  redis.call('ZADD', P..'logs', id, row)
  if job then
    redis.call('ZADD', P..'joblogs:'..job, id, id)
    redis.call('HINCRBY', P..'logbytes', job, #ARGV[b + 3])
  end
end
if trim > 0 then
  local top = tonumber(redis.call('GET', P..'logseq') or 0)
  if top > trim then
    local old = redis.call('ZRANGEBYSCORE', P..'logs', '-inf', top - trim, 'LIMIT', 0, 5000)
    for _, row in ipairs(old) do
      local r = cjson.decode(row)
      if r[6] ~= cjson.null then
        redis.call('ZREM', P..'joblogs:'..r[6], r[1])
        redis.call('HINCRBY', P..'logbytes', r[6], -#r[5])
      end
    end
    redis.call('ZREMRANGEBYSCORE', P..'logs', '-inf', top - trim)
  end
end
redis.call('SET', once, 1, 'EX', ONCE_SECONDS)
return n
""",
}
