"""The transitions as Lua scripts: each runs as the job prelude plus its body.

``ARGV[1]`` is always the key prefix; a script's own arguments follow. A script
refuses with an error reply (``DUPLICATE ...``, ``QUEUEFULL ...``, ``INVALID ...``)
before it writes anything; :mod:`runner.store.redis.codec` turns those into the
runner's errors.
"""

from __future__ import annotations

from runner.store.redis.lua_events import BODIES as EVENTS
from runner.store.redis.lua_schedules import BODIES as SCHEDULES

BODIES: dict[str, str] = {
    # ARGV: now, queue_size, count, jobs...
    "enqueue": r"""
local now, queue_size = tonumber(ARGV[2]), tonumber(ARGV[3])
local jobs = read_jobs(5, tonumber(ARGV[4]))
local problem = enqueue(jobs, now, queue_size)
if problem then return redis.error_reply(problem) end
return #jobs
""",
    # ARGV: now, queue_size, job
    "rearm": r"""
local now, queue_size = tonumber(ARGV[2]), tonumber(ARGV[3])
local jobs = read_jobs(4, 1)
local j = jobs[1]
local h = get(j.id)
if not h or not FINAL[h.state] then return 0 end
if queue_size > 0 then
  local waiting = waiting_in(j.queue)
  if waiting + 1 > queue_size then return redis.error_reply('QUEUEFULL '..j.queue..US..waiting) end
end
return rearm(j, now) and 1 or 0
""",
    # ARGV: now, owner, lease_seconds, want, busy, nqueues, queues..., acks...
    "claim": r"""
local now, owner = tonumber(ARGV[2]), ARGV[3]
local lease, want, busy = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local nq = tonumber(ARGV[7])
local queues = {}
for i = 1, nq do queues[i] = ARGV[7 + i] end
local acks = read_acks(8 + nq)
for _, ack in ipairs(acks) do complete(ack) end
if nq == 0 then queues = redis.call('SMEMBERS', P..'queues') end
-- due delayed jobs join their queue's ready set (the claim is the only mover)
for _, q in ipairs(queues) do
  local due = redis.call('ZRANGEBYSCORE', P..'delayed:'..q, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', P..'delayed:'..q, id)
    local h = get(id)
    if h and WAITING[h.state] and h.queue == q then ready(h) end
  end
end
local suspect = false
for _, q in ipairs(queues) do
  if redis.call('ZCARD', P..'suspect:'..q) > 0 then suspect = true; break end
end
if suspect and busy then return {{}, false, 1, redis.call('HLEN', P..'revoked')} end
local src = suspect and 'suspect:' or 'ready:'
local n = suspect and 1 or want
local picked = {}
if n > 0 then
  local candidates = {}
  for _, q in ipairs(queues) do
    local top = redis.call('ZRANGE', P..src..q, 0, n - 1, 'WITHSCORES')
    for i = 1, #top, 2 do
      candidates[#candidates + 1] = {q=q, m=top[i], s=tonumber(top[i + 1])}
    end
  end
  table.sort(candidates, function(a, b)
    if a.s ~= b.s then return a.s < b.s end
    return a.m < b.m
  end)
  for i = 1, math.min(n, #candidates) do picked[i] = candidates[i] end
end
local claimed = {}
for _, c in ipairs(picked) do
  redis.call('ZREM', P..src..c.q, c.m)
  redis.call('ZREM', P..'waitall:'..c.q, string.sub(c.m, 35))
  local id = string.sub(c.m, 35)
  local h = get(id)
  if h and WAITING[h.state] then
    redis.call('HDEL', P..'job:'..id, 'finished_at')
    local attempt = tonumber(h.attempt) + 1
    redis.call('HSET', P..'job:'..id, 'attempt', attempt, 'started_at', now,
               'lease_owner', owner, 'lease_expires_at', now + lease)
    restate(h, 'executing')
    h.lease_owner = owner
    redis.call('ZADD', P..'leases', now + lease, id)
    redis.call('SADD', P..'inflight:'..owner, id)
    redis.call('SADD', P..'owners', owner)
    local data = redis.call('GET', P..'data:'..id)
    claimed[#claimed + 1] = {id, data, attempt, h.task, h.queue}
  end
end
local next_due = false
if #claimed == 0 and not suspect then
  for _, q in ipairs(queues) do
    local first = redis.call('ZRANGE', P..'delayed:'..q, 0, 0, 'WITHSCORES')
    if #first > 0 and (not next_due or tonumber(first[2]) < tonumber(next_due)) then
      next_due = first[2]
    end
  end
end
return {claimed, next_due, suspect and 1 or 0, redis.call('HLEN', P..'revoked')}
""",
    # ARGV: acks...
    "complete": r"""
local acks = read_acks(2)
local written = 0
for _, ack in ipairs(acks) do if complete(ack) then written = written + 1 end end
return written
""",
    # ARGV: state, job_id, attempt, kind, error_type, message, traceback, f_started_at,
    #       worker, now, run_at, reason, data, nresults, pairs..., njobs, jobs..., acks...
    "fail": r"""
local state, id, attempt = ARGV[2], ARGV[3], ARGV[4]
local f = {kind=ARGV[5], error_type=opt(ARGV[6]), message=opt(ARGV[7]), traceback=opt(ARGV[8]),
           started_at=opt(ARGV[9])}
local worker, now, run_at = opt(ARGV[10]), tonumber(ARGV[11]), opt(ARGV[12])
local reason, data = opt(ARGV[13]), opt(ARGV[14])
local results, at = {}, 16
for i = 1, tonumber(ARGV[15]) do results[i] = {ARGV[at], ARGV[at + 1]}; at = at + 2 end
local jobs
jobs, at = read_jobs(at + 1, tonumber(ARGV[at]))
local acks = read_acks(at)
for _, ack in ipairs(acks) do complete(ack) end
local h = get(id)
if not h then return 0 end
unwait(h)
record_failure(h, attempt, f, worker, now)
local key = P..'job:'..id
local first = redis.call('HGET', key, 'first_failed_at')
redis.call('HINCRBY', key, 'failures', 1)
local fields = {'first_failed_at', first or now, 'last_failed_at', now,
  'finished_at', now}
if f.error_type then fields[#fields+1] = 'error_type'; fields[#fields+1] = f.error_type end
if f.message then
  fields[#fields+1] = 'error_message'; fields[#fields+1] = string.sub(f.message, 1, 2000)
end
if f.traceback then fields[#fields+1] = 'last_error'; fields[#fields+1] = f.traceback end
if run_at then fields[#fields+1] = 'run_at'; fields[#fields+1] = run_at; h.run_at = run_at end
if data then redis.call('SET', P..'data:'..id, data) end
if f.started_at then fields[#fields+1] = 'started_at'; fields[#fields+1] = f.started_at end
if reason then fields[#fields+1] = 'reason'; fields[#fields+1] = reason end
redis.call('HSET', key, unpack(fields))
if not reason then redis.call('HDEL', key, 'reason') end
if not f.error_type then redis.call('HDEL', key, 'error_type') end
if not f.message then redis.call('HDEL', key, 'error_message') end
if not f.traceback then redis.call('HDEL', key, 'last_error') end
restate(h, state, now)
if state == 'retrying' then wait(h, now) end
follow_ups(id, results, jobs, now)
return 1
""",
    # ARGV: job_id, now, reason, nresults, pairs...
    "cancel_attempt": r"""
local id, now, reason = ARGV[2], tonumber(ARGV[3]), opt(ARGV[4])
local h = get(id)
if not h then return 0 end
unwait(h)
redis.call('HSET', P..'job:'..id, 'finished_at', now)
if reason then redis.call('HSET', P..'job:'..id, 'reason', reason)
else redis.call('HDEL', P..'job:'..id, 'reason') end
restate(h, 'cancelled', now)
local results, at = {}, 6
for i = 1, tonumber(ARGV[5]) do results[i] = {ARGV[at], ARGV[at + 1]}; at = at + 2 end
follow_ups(id, results, {}, now)
return 1
""",
    # ARGV: job_id, now, reason, nresults, pairs...
    "hand_back": r"""
local id, now, reason = ARGV[2], tonumber(ARGV[3]), opt(ARGV[4])
local h = get(id)
if h and h.state == 'executing' then
  redis.call('HSET', P..'job:'..id, 'run_at', now)
  if reason then redis.call('HSET', P..'job:'..id, 'reason', reason)
  else redis.call('HDEL', P..'job:'..id, 'reason') end
  h.run_at = now
  restate(h, 'available')
  wait(h, now)
end
local results, at = {}, 6
for i = 1, tonumber(ARGV[5]) do results[i] = {ARGV[at], ARGV[at + 1]}; at = at + 2 end
if h then follow_ups(id, results, {}, now) end
return 1
""",
    # ARGV: job_id, run_at
    "release": r"""
local id, run_at = ARGV[2], ARGV[3]
local h = get(id)
if not h then return 0 end
unwait(h)
redis.call('HSET', P..'job:'..id, 'attempt', tonumber(h.attempt) - 1, 'run_at', run_at)
redis.call('HDEL', P..'job:'..id, 'started_at')
h.run_at = run_at
restate(h, 'scheduled')
wait(h, nil)
return 1
""",
    # ARGV: ids...
    "unclaim": r"""
for i = 2, #ARGV do
  local h = get(ARGV[i])
  if h and h.state == 'executing' then
    redis.call('HSET', P..'job:'..h.id, 'attempt', tonumber(h.attempt) - 1)
    redis.call('HDEL', P..'job:'..h.id, 'started_at')
    restate(h, 'available')
    wait(h, tonumber(h.run_at))
  end
end
return 1
""",
    # ARGV: now, reason, due (1/0)
    "cancel_waiting": r"""
local now, reason, due = tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1'
local n = 0
for _, state in ipairs({'available', 'scheduled', 'retrying'}) do
  local ids = redis.call('ZRANGE', P..'state:'..state, 0, -1)
  for _, id in ipairs(ids) do
    local h = get(id)
    local at = tonumber(h.run_at)
    if (due and at <= now) or (not due and at > now) then
      n = n + cancel(h, WAITING, now, reason)
    end
  end
end
return n
""",
    # ARGV: job_id, done, total, message
    "set_progress": r"""
local key = P..'job:'..ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'progress_done', ARGV[3])
for i, name in ipairs({'progress_total', 'progress_message'}) do
  local v = opt(ARGV[3 + i])
  if v then redis.call('HSET', key, name, v) else redis.call('HDEL', key, name) end
end
return 1
""",
    # ARGV: owner, now, lease_seconds, worker fields (count, pairs...), ids...
    "heartbeat": r"""
local owner, now, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local wkey = P..'worker:'..owner
local n = tonumber(ARGV[5])
local at = 6
if redis.call('EXISTS', wkey) == 1 then
  local fields = {}
  for i = 1, n do
    if ARGV[at + 1] ~= NULL then
      fields[#fields + 1] = ARGV[at]; fields[#fields + 1] = ARGV[at + 1]
    end
    at = at + 2
  end
  redis.call('HSET', wkey, 'heartbeat_at', now, unpack(fields))
  redis.call('ZADD', P..'workers', now, owner)
else
  at = at + 2 * n
end
for i = at, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HMGET', P..'job:'..id, 'state', 'lease_owner')
  if v[1] == 'executing' and v[2] == owner then
    redis.call('HSET', P..'job:'..id, 'lease_expires_at', now + lease)
    redis.call('ZADD', P..'leases', now + lease, id)
  end
end
return 1
""",
    # ARGV: now, crash_limit, me, ndead, dead owners..., then (id, owner, attempt, unstarted)*
    "recover": r"""
local now, crash_limit, me = tonumber(ARGV[2]), tonumber(ARGV[3]), opt(ARGV[4])
local nd = tonumber(ARGV[5])
local dead = {}
for i = 1, nd do dead[ARGV[5 + i]] = true end
local requeued, buried = {}, {}
for at = 6 + nd, #ARGV, 4 do
  local id, owner, attempt, unstarted = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local h = get(id)
  if h and h.state == 'executing' and h.lease_owner == owner and h.attempt == attempt then
    local expires = tonumber(redis.call('HGET', P..'job:'..id, 'lease_expires_at') or now)
    if expires < now or dead[owner] then
      if unstarted == '1' then
        redis.call('HSET', P..'job:'..id, 'attempt', tonumber(attempt) - 1, 'run_at', now,
          'reason', 'claimed by a worker that died before starting it; requeued')
        redis.call('HDEL', P..'job:'..id, 'started_at')
        h.run_at = now
        restate(h, 'available')
        wait(h, now)
        requeued[#requeued + 1] = id
      else
        local message
        if owner ~= me then
          message = 'worker ' .. owner .. ' died while attempt ' .. attempt .. ' was running'
        else
          message = 'lease of attempt ' .. attempt ..
                    ' expired: its outcome could not be written'
        end
        if charge(h, message, crash_limit, 'WorkerDied', now) then
          buried[#buried + 1] = id
        else
          requeued[#requeued + 1] = id
        end
      end
    end
  end
end
for owner, _ in pairs(dead) do
  if redis.call('SCARD', P..'inflight:'..owner) == 0 then redis.call('SREM', P..'owners', owner) end
end
return {requeued, buried}
""",
    # ARGV: job_id, attempt, owner, message, crash_limit, now
    "charge_stuck": r"""
local h = get(ARGV[2])
if not h or h.state ~= 'executing' or h.attempt ~= ARGV[3] or h.lease_owner ~= ARGV[4] then
  return false
end
return charge(h, ARGV[5], tonumber(ARGV[6]), 'JobStuck', tonumber(ARGV[7])) and 'dead'
  or 'available'
""",
    # ARGV: verb (retry/cancel/discard), now, up_to_rowid (0: any), nstates, states..., ids...
    "by_hand": r"""
local verb, now, up_to = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local allowed = {}
local ns = tonumber(ARGV[5])
for i = 1, ns do allowed[ARGV[5 + i]] = true end
local reasons = {retry='retried by hand', cancel='cancelled by hand', discard='discarded by hand'}
local changed = {}
for i = 6 + ns, #ARGV do
  local h = get(ARGV[i])
  if h and allowed[h.state] and (up_to == 0 or tonumber(h.rowid) <= up_to) then
    local n
    if verb == 'retry' then
      n = retry_now(h, now, reasons[verb])
    else
      n = cancel(h, allowed, now, reasons[verb])
    end
    if n == 1 then changed[#changed + 1] = h.rowid end
  end
end
return changed
""",
    # ARGV: completed_before, dead_before, limit
    "prune_jobs": r"""
local limits = {completed=ARGV[2], cancelled=ARGV[2], dead=ARGV[3]}
local budget = tonumber(ARGV[4])
local jobs, logs = 0, 0
for _, state in ipairs({'completed', 'cancelled', 'dead'}) do
  if budget <= 0 then break end
  local ids = redis.call('ZRANGEBYSCORE', P..'fin:'..state, '-inf', '(' .. limits[state],
                         'LIMIT', 0, budget)
  for _, id in ipairs(ids) do
    local h = get(id)
    if h then
      redis.call('ZREM', P..'state:'..h.state, id)
      bump(P..'qstate', h.queue..US..h.state, -1)
      redis.call('ZREM', P..'jobs', id)
      if h.event_id then redis.call('ZREM', P..'evjobs:'..h.event_id, id) end
      redis.call('DEL', P..'job:'..id, P..'errors:'..id, P..'data:'..id)
      redis.call('HDEL', P..'kv', id)
      local logids = redis.call('ZRANGE', P..'joblogs:'..id, 0, -1)
      for _, lid in ipairs(logids) do
        logs = logs + redis.call('ZREMRANGEBYSCORE', P..'logs', lid, lid)
      end
      redis.call('DEL', P..'joblogs:'..id)
      redis.call('HDEL', P..'logbytes', id)
    end
    redis.call('ZREM', P..'fin:'..state, id)
    jobs = jobs + 1
    budget = budget - 1
  end
end
return {jobs, logs}
""",
    # ARGV: key, value, ttl (NULL: none), now
    "kv_put_if_empty": r"""
local key = ARGV[2]
local kv = P..((string.sub(key, 1, 2) == 'r:' or string.sub(key, 1, 3) == 'rt:')
               and 'revoked' or 'kv')
if redis.call('HEXISTS', kv, key) == 1 then
  local expires = redis.call('HGET', P..'kvexp', key)
  if not expires or tonumber(expires) >= tonumber(ARGV[5]) then return 0 end
end
redis.call('HSET', kv, key, ARGV[3])
if ARGV[4] ~= NULL then
  redis.call('HSET', P..'kvexp', key, tonumber(ARGV[5]) + tonumber(ARGV[4]))
else
  redis.call('HDEL', P..'kvexp', key)
end
return 1
""",
    # ARGV: name, owner, ttl, now
    "take_lease": r"""
local key = P..'lease:'..ARGV[2]
local v = redis.call('HMGET', key, 'owner', 'expires_at')
if v[1] and v[1] ~= ARGV[3] and tonumber(v[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('HSET', key, 'owner', ARGV[3], 'expires_at', tonumber(ARGV[5]) + tonumber(ARGV[4]))
return 1
""",
    # ARGV: name, owner
    "release_lease": r"""
local key = P..'lease:'..ARGV[2]
if redis.call('HGET', key, 'owner') == ARGV[3] then redis.call('DEL', key) end
return 1
""",
    **SCHEDULES,
    **EVENTS,
}
