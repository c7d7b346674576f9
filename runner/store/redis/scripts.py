"""The transitions as Lua scripts: each runs as the job prelude plus its body.

``ARGV[1]`` is always the key prefix; a script's own arguments follow. A script
refuses with an error reply (``DUPLICATE ...``, ``QUEUEFULL ...``, ``INVALID ...``)
before it writes anything; :mod:`runner.store.redis.codec` turns those into the
runner's errors.
"""

from __future__ import annotations

from runner.store.redis.lua_events import BODIES as EVENTS
from runner.store.redis.lua_flow import BODIES as FLOW
from runner.store.redis.lua_schedules import BODIES as SCHEDULES
from runner.store.redis.lua_transfer import BODIES as TRANSFER
from runner.store.redis.lua_workers import BODIES as WORKERS

BODIES: dict[str, str] = {
    # ARGV: now, queue_size, nbounds, (queue, max_size, on_full)..., count, jobs..., token
    "enqueue": r"""
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the call's token keeps the first answer, and the jobs are not refused
-- as duplicates of themselves.
local once = P..'once:'..ARGV[#ARGV]
local answer = redis.call('GET', once)
if answer then return cjson.decode(answer) end
local now, queue_size = tonumber(ARGV[2]), tonumber(ARGV[3])
local bounds, at = read_bounds(4)
local jobs = read_jobs(at + 1, tonumber(ARGV[at]))
absorb(nil)  -- bounds count the inbox's jobs; rowids follow the order of enqueueing
local problem, dups, dropped = enqueue(jobs, now, queue_size, bounds)
if problem then return redis.error_reply(problem) end
-- the usual answer is one integer: the client reads it in one go
if #dups == 0 and #dropped == 0 then answer = woke and 1 or 0
else answer = {woke and 1 or 0, dups, dropped} end
redis.call('SET', once, cjson.encode(answer), 'EX', ONCE_SECONDS)
return answer
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
  if waiting + 1 > queue_size then
    return redis.error_reply(full(j.queue, waiting, queue_size, 1))
  end
end
return rearm(j, now) and 1 or 0
""",
    # ARGV: now, owner, lease_seconds, want, busy ('1', '0', or 'leave': suspects stay
    #       waiting and the others are claimed), limits (JSON, or empty), nqueues,
    #       queues..., acks..., token (last)
    "claim": r"""
local now, owner = tonumber(ARGV[2]), ARGV[3]
local lease, want, busy = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local leave = ARGV[6] == 'leave'
-- The owner's last claim that took jobs: its token, whether it took a suspect, its ids.
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the same claim then hands over the jobs it took, still held.
local token, last = ARGV[#ARGV], P..'claimed:'..owner
local before = redis.call('GET', last)
if before and string.sub(before, 1, #token + 1) == token..US then
  local claimed, suspect = {}, string.sub(before, #token + 2, #token + 2) == '1'
  for id in string.gmatch(string.sub(before, #token + 4), '[^'..US..']+') do
    local h = get(id)
    if h and h.state == 'executing' and h.lease_owner == owner then
      claimed[#claimed + 1] = {id, redis.call('GET', P..'data:'..id), tonumber(h.attempt),
                               h.task, h.queue}
    end
  end
  return {claimed, false, suspect and 1 or 0, redis.call('HLEN', P..'revoked'), {}}
end
local limits = (ARGV[7] ~= '') and cjson.decode(ARGV[7]) or nil
local nq = tonumber(ARGV[8])
local queues = {}
for i = 1, nq do queues[i] = ARGV[8 + i] end
local acks = read_acks(9 + nq)
for _, ack in ipairs(acks) do complete(ack) end
-- a part of a large inbox left: read on at once (no push publishes while it holds jobs)
local backlog = absorb(ABSORB) == ABSORB and redis.call('LLEN', P..'inbox') > 0
if nq == 0 then
  queues = {}
  for _, q in ipairs(redis.call('SMEMBERS', P..'queues')) do
    -- a queue emptied before queues were kept to those with waiting jobs
    if redis.call('EXISTS', P..'waitall:'..q) == 1 then queues[#queues + 1] = q
    else redis.call('SREM', P..'queues', q) end
  end
end
local paused_queues, paused_tasks = paused_sets()
if next(paused_queues) then
  local open = {}
  for _, q in ipairs(queues) do if not paused_queues[q] then open[#open + 1] = q end end
  queues = open
end
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
for _, q in ipairs(leave and {} or queues) do
  if redis.call('ZCARD', P..'suspect:'..q) > 0 then suspect = true; break end
end
if suspect and busy then return {{}, false, 1, redis.call('HLEN', P..'revoked'), {}} end
local src = suspect and 'suspect:' or 'ready:'
local n = suspect and 1 or want
local picked, token_due, full, more = {}, nil, {}, false
if n > 0 and limits then
  picked, token_due, full, more = choose_limited(src, queues, n, now, limits, paused_tasks)
  if suspect and #picked == 0 then
    -- Every due suspect is held back by a limit: it cannot run now, alone or not, so
    -- the other jobs are claimed meanwhile rather than none at all.
    suspect, src, n = false, 'ready:', want
    picked, token_due, full, more = choose_limited(src, queues, n, now, limits, paused_tasks)
  end
elseif n > 0 then
  unpark(src, queues, n, function(_, task) return not paused_tasks[task] end)
  local candidates = {}
  for _, q in ipairs(queues) do
    local top, cut = heads(src, q, n, paused_tasks)
    more = more or cut
    for _, c in ipairs(top) do candidates[#candidates + 1] = c end
  end
  table.sort(candidates, function(a, b)
    if a.s ~= b.s then return a.s < b.s end
    return a.m < b.m
  end)
  for i = 1, math.min(n, #candidates) do picked[i] = candidates[i] end
end
local claimed = {}
local taken_from = {}
for _, c in ipairs(picked) do
  redis.call('ZREM', P..src..c.q, c.m)
  redis.call('ZREM', P..'waitall:'..c.q, string.sub(c.m, 35))
  taken_from[c.q] = true
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
for q in pairs(taken_from) do forget_if_empty(q) end  -- once a queue, not once a job
if #claimed > 0 then
  local ids = {}
  for i, c in ipairs(claimed) do ids[i] = c[1] end
  redis.call('SET', last, token..US..(suspect and '1' or '0')..US..table.concat(ids, US),
             'EX', math.ceil(lease))
end
local next_due = false
if #claimed == 0 and not suspect then
  for _, q in ipairs(queues) do
    local first = redis.call('ZRANGE', P..'delayed:'..q, 0, 0, 'WITHSCORES')
    if #first > 0 and (not next_due or tonumber(first[2]) < tonumber(next_due)) then
      next_due = first[2]
    end
  end
  if token_due and (not next_due or token_due < tonumber(next_due)) then
    next_due = exact(token_due)
  end
  if more or backlog then next_due = exact(now) end  -- held-back or unindexed jobs left
end
return {claimed, next_due, suspect and 1 or 0, redis.call('HLEN', P..'revoked'), full}
""",
    # ARGV: acks...
    "complete": r"""
local acks = read_acks(2)
local written = 0
for _, ack in ipairs(acks) do if complete(ack) then written = written + 1 end end
return written
""",
    # ARGV: state, job_id, attempt, kind, error_type, message, traceback, f_started_at,
    #       worker, now, run_at, reason, data, nresults, pairs..., njobs, jobs..., acks...,
    #       token (last)
    "fail": r"""
local state, id, attempt = ARGV[2], ARGV[3], ARGV[4]
-- The client sends a command again when its connection is lost, and the loss may come
-- after this ran: the call's token says so, and the failure is not recorded twice.
local once = P..'once:'..ARGV[#ARGV]
if redis.call('EXISTS', once) == 1 then return 1 end
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
if not h or not holds(h, attempt) then return 0 end
fail_attempt(h, state, attempt, f, worker, now, run_at, reason, data)
follow_ups(id, results, jobs, now)
redis.call('SET', once, 1, 'EX', ONCE_SECONDS)
return 1
""",
    # ARGV: job_id, attempt (NULL: any), now, reason, unstarted, nresults, pairs...
    "cancel_attempt": r"""
local id, attempt, now, reason = ARGV[2], opt(ARGV[3]), tonumber(ARGV[4]), opt(ARGV[5])
local h = get(id)
if not h or not holds(h, attempt) then return 0 end
unwait(h)
local finished = now
if opt(ARGV[6]) == '1' then
  -- Never begun (a prefetched job): the claim is undone, the attempt not counted, and the
  -- run time is the last finished attempt's (the claim wrote over it), none for a first.
  h.attempt = tonumber(h.attempt) - 1
  redis.call('HSET', P..'job:'..id, 'attempt', h.attempt)
  redis.call('HDEL', P..'job:'..id, 'started_at')
  local last = redis.call('LINDEX', P..'errors:'..id, -1)
  if last then
    local row = cjson.decode(last)
    if row[8] ~= cjson.null then redis.call('HSET', P..'job:'..id, 'started_at', row[8]) end
    finished = row[9]
  end
end
redis.call('HSET', P..'job:'..id, 'finished_at', finished)
if reason then redis.call('HSET', P..'job:'..id, 'reason', reason)
else redis.call('HDEL', P..'job:'..id, 'reason') end
restate(h, 'cancelled', finished)  -- indexed by the time the row says (retention reads it)
local results, at = {}, 8
for i = 1, tonumber(ARGV[7]) do results[i] = {ARGV[at], ARGV[at + 1]}; at = at + 2 end
follow_ups(id, results, {}, now)
return 1
""",
    # ARGV: job_id, attempt (NULL: any), now, reason, nresults, pairs...
    # Returns 1 handed back, 2 cancelled (its cancel was asked), 0 nothing (not its attempt).
    "hand_back": r"""
local id, attempt, now, reason = ARGV[2], opt(ARGV[3]), tonumber(ARGV[4]), opt(ARGV[5])
local h = get(id)
if not h or h.state ~= 'executing' or not holds(h, attempt) then return 0 end
local results, at = {}, 7
for i = 1, tonumber(ARGV[6]) do results[i] = {ARGV[at], ARGV[at + 1]}; at = at + 2 end
local asked = redis.call('HGET', P..'cancels', id)
local sep = asked and string.find(asked, US, 1, true)
if sep and string.sub(asked, 1, sep - 1) == tostring(h.attempt) then
  -- Asked to stop before its worker did: handed back, it would run again.
  unwait(h)
  redis.call('HSET', P..'job:'..id, 'finished_at', now, 'reason',
    'cancelled by ' .. string.sub(asked, sep + 1) .. ' while running')
  restate(h, 'cancelled', now)
  follow_ups(id, results, {}, now)
  return 2
end
-- The attempt is not used (see SQLite's hand_back); sent again, the job is no longer
-- executing and nothing is taken twice.
h.attempt = tonumber(h.attempt) - 1
redis.call('HSET', P..'job:'..id, 'run_at', now, 'attempt', h.attempt)
if reason then redis.call('HSET', P..'job:'..id, 'reason', reason)
else redis.call('HDEL', P..'job:'..id, 'reason') end
h.run_at = now
restate(h, 'available')
wait(h, now)
follow_ups(id, results, {}, now)
return 1
""",
    # ARGV: job_id, run_at
    "release": r"""
local id, run_at = ARGV[2], ARGV[3]
local h = get(id)
-- only a claimed job (sent again after a lost reply, it is not: its attempt stays given back)
if not h or h.state ~= 'executing' then return 0 end
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
    # ARGV: (none): the inbox indexed (readers of the rowid-ordered indexes call it)
    "absorb": r"""
return absorb(nil)
""",
    # ARGV: ids (joined by US), fields...: each job's fields (false for a job gone), in
    # one reply: a pipeline of an HMGET a job costs the client ~30 us each, and so does
    # each argument sent.
    "job_fields": r"""
local names, out = {}, {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
for id in string.gmatch(ARGV[2], '[^'..US..']+') do
  local values = redis.call('HMGET', P..'job:'..id, unpack(names))
  if values[1] then out[#out + 1] = values else out[#out + 1] = false end
end
return out
""",
    # ARGV: needle, ids...: those of the ids whose id, task, arguments or error message
    # hold the needle, the case of ASCII letters aside (as SQLite's LIKE); ``needle`` is
    # in lower case. A search then reads the hashes of the jobs it finds, not of all.
    "match_text": r"""
local needle, found = ARGV[2], {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local hit = string.find(string.lower(id), needle, 1, true)
  if not hit then
    for _, v in ipairs(redis.call('HMGET', P..'job:'..id, 'task', 'args', 'error_message')) do
      if v and string.find(string.lower(v), needle, 1, true) then hit = true; break end
    end
  end
  if hit then found[#found + 1] = id end
end
return found
""",
    # ARGV: most: the listings by queue and by task brought up to date by at most that
    # many jobs (readers that filter by queue or task call it until it answers fewer)
    "index_jobs": r"""
-- Every job written since ``ixmark`` (the last rowid listed), in rowid order: written
-- here, not by the enqueue, so an enqueue stays one push and a job is listed by queue
-- and task even when a worker of an older release wrote it.
local most = tonumber(ARGV[2])
local mark = redis.call('GET', P..'ixmark') or '0'
local rows = redis.call('ZRANGEBYSCORE', P..'jobs', '(' .. mark, '+inf', 'WITHSCORES',
                        'LIMIT', 0, most)
for i = 1, #rows, 2 do
  local v = redis.call('HMGET', P..'job:'..rows[i], 'queue', 'task')
  if v[1] then redis.call('ZADD', P..'qjobs:'..v[1], rows[i + 1], rows[i]) end
  if v[2] then redis.call('ZADD', P..'tjobs:'..v[2], rows[i + 1], rows[i]) end
end
if #rows > 0 then redis.call('SET', P..'ixmark', rows[#rows]) end
return math.floor(#rows / 2)
""",
    **WORKERS,
    **SCHEDULES,
    **EVENTS,
    **FLOW,
    **TRANSFER,
}

#: Scripts that do not index the inbox first: the enqueue and the claim do it themselves
#: (the claim a bounded part), ``match_text`` reads jobs a walk of the indexes found, and
#: the others of a worker's hot path touch only jobs that were claimed (so indexed),
#: payloads, logs or leases.
_OWN_INBOX = {"enqueue", "claim", "absorb", "match_text", "complete", "fail", "cancel_attempt",
              "hand_back", "set_progress", "heartbeat", "write_logs", "kv_put_if_empty",
              "put_revocation", "clear_revocation", "take_lease", "release_lease"}

BODIES = {name: body if name in _OWN_INBOX else "absorb(nil)\n" + body
          for name, body in BODIES.items()}
