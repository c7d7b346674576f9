"""Lua scripts of schedules, events and logs (the job helpers of the prelude included).

Schedules: ``sched:<name>`` hash, ``schedules`` (names, lexical), ``sched_due`` (active
names by ``next_fire_at``), ``runs:<name>`` (slot records, cjson, by ``manual:slot``) and
``runt:<name>`` (those fields by ``fired_at``). Events: ``event:<id>`` hash, ``events``
(ids by ``emitted_at``), ``ev:pending`` / ``ev:unhandled``
(ids by ``emitted_at``), ``evkey`` (idempotency key → newest event id). Logs: ``logs``
(cjson records scored by id), ``joblogs:<job>`` (a job's record ids), ``logbytes``.
"""

from __future__ import annotations

BODIES: dict[str, str] = {
    # ARGV: now, orphan_others (1/0), count, then per item 8 fields
    "sync_schedules": r"""
redis.call('INCR', P..'version')
local now = ARGV[2]
local orphan_others = ARGV[3] == '1'
local names = {}
local function active(key)
  local v = redis.call('HMGET', key, 'enabled', 'paused', 'orphaned', 'next_fire_at')
  return v[1] == '1' and v[2] ~= '1' and v[3] ~= '1' and v[4], v[4]
end
local function index(name)
  local key = P..'sched:'..name
  local on, at = active(key)
  if on then redis.call('ZADD', P..'sched_due', at, name)
  else redis.call('ZREM', P..'sched_due', name) end
end
for i = 0, tonumber(ARGV[4]) - 1 do
  local b = 5 + i * 8
  local name, task, expr, tz = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3]
  local misfire, overlap, enabled, next_fire = ARGV[b+4], ARGV[b+5], ARGV[b+6], ARGV[b+7]
  names[name] = true
  local key = P..'sched:'..name
  local old = redis.call('HMGET', key, 'expression', 'tz', 'orphaned', 'enabled')
  if not old[1] then
    redis.call('HSET', key, 'name', name, 'task', task, 'expression', expr, 'tz', tz,
      'misfire', misfire, 'overlap', overlap, 'enabled', enabled, 'next_fire_at', next_fire,
      'paused', 0, 'orphaned', 0, 'skip_next', 0, 'fired', 0, 'skipped', 0,
      'created_at', now, 'updated_at', now)
    redis.call('ZADD', P..'schedules', 0, name)
  else
    if old[1] ~= expr or old[2] ~= tz or old[3] == '1' or (old[4] == '0' and enabled == '1') then
      redis.call('HSET', key, 'next_fire_at', next_fire)
    end
    redis.call('HSET', key, 'task', task, 'expression', expr, 'tz', tz, 'misfire', misfire,
      'overlap', overlap, 'enabled', enabled, 'orphaned', 0, 'updated_at', now)
  end
  index(name)
end
if orphan_others then
  for _, name in ipairs(redis.call('ZRANGE', P..'schedules', 0, -1)) do
    if not names[name] and redis.call('HGET', P..'sched:'..name, 'orphaned') == '0' then
      redis.call('HSET', P..'sched:'..name, 'orphaned', 1, 'updated_at', now)
      index(name)
    end
  end
end
return 1
""",
    # ARGV: now, 8 fields
    "ensure_schedule": r"""
redis.call('INCR', P..'version')
local now = ARGV[2]
local name = ARGV[3]
local key = P..'sched:'..name
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'name', name, 'task', ARGV[4], 'expression', ARGV[5], 'tz', ARGV[6],
  'misfire', ARGV[7], 'overlap', ARGV[8], 'enabled', ARGV[9], 'next_fire_at', ARGV[10],
  'paused', 0, 'orphaned', 0, 'skip_next', 0, 'fired', 0, 'skipped', 0,
  'created_at', now, 'updated_at', now)
redis.call('ZADD', P..'schedules', 0, name)
if ARGV[9] == '1' then redis.call('ZADD', P..'sched_due', ARGV[10], name) end
return 1
""",
    # ARGV: name, paused (1/0), now, next_fire_at
    "set_paused": r"""
redis.call('INCR', P..'version')
local key = P..'sched:'..ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', key, 'paused', 1, 'updated_at', ARGV[4])
  redis.call('ZREM', P..'sched_due', ARGV[2])
  return 1
end
if redis.call('HGET', key, 'paused') == '1' then
  local nf = opt(ARGV[5])
  if nf then redis.call('HSET', key, 'next_fire_at', nf)
  else redis.call('HDEL', key, 'next_fire_at') end
end
redis.call('HSET', key, 'paused', 0, 'updated_at', ARGV[4])
local v = redis.call('HMGET', key, 'enabled', 'orphaned', 'next_fire_at')
if v[1] == '1' and v[2] ~= '1' and v[3] then redis.call('ZADD', P..'sched_due', v[3], ARGV[2]) end
return 1
""",
    # ARGV: name, skip, now
    "set_skip_next": r"""
redis.call('INCR', P..'version')
local key = P..'sched:'..ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'skip_next', ARGV[3], 'updated_at', ARGV[4])
return 1
""",
    # ARGV: name, now, queue_size, job (NF)
    "record_manual_run": r"""
redis.call('INCR', P..'version')
local name, now = ARGV[2], tonumber(ARGV[3])
local jobs = read_jobs(5, 1)
local problem = enqueue(jobs, now, tonumber(ARGV[4]))
if problem then return redis.error_reply(problem) end
local field = '1:' .. ARGV[3] .. ':' .. jobs[1].id
redis.call('HSET', P..'runs:'..name, field,
  cjson.encode({ARGV[3], true, ARGV[3], jobs[1].id, 'enqueued (run now)'}))
redis.call('ZADD', P..'runt:'..name, now, field)
local key = P..'sched:'..name
if redis.call('EXISTS', key) == 1 then
  redis.call('HSET', key, 'last_job_id', jobs[1].id, 'last_fired_at', ARGV[3],
             'updated_at', ARGV[3])
  redis.call('HINCRBY', key, 'fired', 1)
end
return 1
""",
    # ARGV: fired_at, queue_size, name, expected, next_fire_at, overlap, dropped, nslots,
    #       slots..., jobs (NF each, one per slot)
    "fire": r"""
redis.call('INCR', P..'version')
local fired_at, queue_size = tonumber(ARGV[2]), tonumber(ARGV[3])
local name, expected, next_fire = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local overlap, dropped, nslots = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local slots = {}
for i = 1, nslots do slots[i] = ARGV[9 + i] end
local jobs = read_jobs(10 + nslots, nslots)
local key = P..'sched:'..name
local v = redis.call('HMGET', key, 'next_fire_at', 'enabled', 'paused', 'orphaned', 'skip_next')
if not v[1] or tonumber(v[1]) ~= expected or v[2] ~= '1' or v[3] == '1' or v[4] == '1' then
  return cjson.encode({won=false})
end
-- check before the first write: an id taken already refuses the whole firing
for _, j in ipairs(jobs) do
  if redis.call('EXISTS', P..'job:'..j.id) == 1 then
    return redis.error_reply('DUPLICATE id '..j.id)
  end
end
redis.call('HSET', key, 'next_fire_at', next_fire, 'updated_at', ARGV[2])
redis.call('ZADD', P..'sched_due', next_fire, name)
local skip_next = v[5] == '1'
local live = redis.call('HGETALL', P..'slive:'..name)
local waiting, running = 0, 0
for i = 1, #live, 2 do
  if live[i] == 'executing' then running = running + tonumber(live[i + 1])
  elseif WAITING[live[i]] then waiting = waiting + tonumber(live[i + 1]) end
end
local reasons = {}
local first = 1
if skip_next and nslots > 0 then reasons[1] = 'skip-next requested'; first = 2 end
if overlap == 'skip' and (waiting > 0 or running > 0) then
  local why = 'overlap: the previous run is still ' .. (running > 0 and 'running' or 'waiting')
  for i = first, nslots do reasons[i] = why end
elseif overlap == 'queue_one' then
  for i = first, nslots do
    if waiting > 0 then reasons[i] = 'overlap: a run is already waiting (queue_one)'
    elseif i ~= nslots then reasons[i] = 'coalesced with a later slot (queue_one)' end
  end
end
local enqueued, skipped = {}, {}
local last_job = nil
for i = 1, nslots do
  local slot, j, reason = slots[i], jobs[i], reasons[i]
  local field = '0:' .. slot
  local record = {slot, false, ARGV[2], reason and cjson.null or j.id,
                  reason and ('skipped: ' .. reason) or 'enqueued'}
  if redis.call('HSETNX', P..'runs:'..name, field, cjson.encode(record)) == 1 then
    redis.call('ZADD', P..'runt:'..name, fired_at, field)
    if not reason then
      local problem = enqueue({j}, fired_at, queue_size)
      if problem then
        reason = "queue '" .. j.queue .. "' is full"
        record[4], record[5] = cjson.null, 'skipped: ' .. reason
        redis.call('HSET', P..'runs:'..name, field, cjson.encode(record))
      end
    end
    if not reason then
      enqueued[#enqueued + 1] = {tonumber(slot), j.id}
      last_job = j.id
    else
      skipped[#skipped + 1] = {tonumber(slot), reason}
    end
  end
end
local skip_reason = (#skipped > 0) and skipped[#skipped][2] or nil
if dropped > 0 and not skip_reason then
  skip_reason = dropped .. ' missed slot(s) dropped by the misfire policy'
end
local fields = {'skip_next', (skip_next and nslots == 0) and 1 or 0}
if nslots > 0 then
  local last_slot = slots[nslots]
  for _, f in ipairs({'last_slot_at', last_slot, 'last_fired_at', ARGV[2],
                      'last_lag', fired_at - tonumber(last_slot)}) do
    fields[#fields + 1] = f
  end
end
if last_job then fields[#fields + 1] = 'last_job_id'; fields[#fields + 1] = last_job end
if skip_reason then
  for _, f in ipairs({'last_skip_at', ARGV[2], 'last_skip_reason', skip_reason}) do
    fields[#fields + 1] = f
  end
end
redis.call('HSET', key, unpack(fields))
redis.call('HINCRBY', key, 'fired', #enqueued)
redis.call('HINCRBY', key, 'skipped', #skipped + dropped)
return cjson.encode({won=true, enqueued=enqueued, skipped=skipped})
""",
    # ARGV: now, dedupe_window, nevents, events (id, name, data, key, source)...,
    #       ndispatch, then per dispatch job: job (NF), ncovered, covered ids...
    "insert_events": r"""
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
if #rows == 0 then return ids end
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
    # ARGV: event_id, now, njobs, jobs...
    "add_deliveries": r"""
local id, now = ARGV[2], tonumber(ARGV[3])
local jobs = read_jobs(5, tonumber(ARGV[4]))
if #jobs == 0 or redis.call('EXISTS', P..'job:'..jobs[1].id) == 1 then return 0 end
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
return 1
""",
    # ARGV: event_id, dispatch_job, now
    "redispatch_event": r"""
local id, job, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
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
return 1
""",
    # ARGV: trim_to, count, then per record: created_at, level, logger, message, job_id,
    #       task, worker
    "write_logs": r"""
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
return n
""",
}
