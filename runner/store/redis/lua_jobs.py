"""The job state machine in Lua: every write to a job, one atomic script each.

Redis runs a script alone, so each transition sees and leaves the indexes
consistent, as a SQLite transaction does. A script does not roll back on
error, so each one checks everything that can refuse (a duplicate id or
unique key, a full queue) before its first write.

Keys under the prefix ``P`` (``ARGV[1]``, ending in ``:``):

* ``job:<id>``: the job hash (the columns of ``runner_job``; an absent field is NULL);
  ``jobs``: ids by insertion number (the rowid); ``qjobs:<queue>`` and ``tjobs:<task>``:
  the same per queue and per task, whatever the state (the CLI's and the dashboard's
  listings), brought up to ``ixmark`` by the readers that need them (``index_jobs``);
* ``state:<state>``: ids by rowid; ``qstate``: waiting counts per ``queue<US>state``;
* ``ready:<queue>``: due jobs, score ``-priority``, member ``run_at:rowid:id`` (so
  equal priorities come out oldest due first); ``suspect:<queue>``: the same for jobs
  that were running when a worker died (claimed alone); ``delayed:<queue>``: id by
  ``run_at`` (moved to ``ready`` by the claim once due); ``queues``: the queues with
  waiting jobs (a queue leaves it with its last waiting job: a claim reads every one);
* ``waitall:<queue>``: every waiting id of a queue by ``run_at`` (bounds, backlog ages);
* ``leases``: id by lease expiry; ``inflight:<owner>``: a worker's claimed ids
  (the in-flight set the lifeline reads when the owner is gone); ``claimed:<owner>``:
  the token and ids of the owner's last claim that took jobs, for a lease;
* ``once:<token>``: a call that ran (an enqueue's or an emit's answer, a failure, a
  redispatch), for ``ONCE`` seconds: the same call sent again after its reply was lost
  is not written twice;
* ``fin:<state>``: finished ids by ``finished_at`` (retention, rates);
* ``unique``: unique key → id of the live job holding it; ``ulive:<key>`` and
  ``ufin:<key>``: the live and the finished jobs of a unique key by ``created_at``
  (what the duplicate check reads: windows and states);
* ``run``: jobs executing per ``t<US>task`` and ``k<US>task<US>key`` (concurrency
  limits); ``cancels``, ``pauses``, ``backpressure``: see :mod:`runner.store.redis.lua_flow`;
  ``flow``: token buckets and queue turns (:mod:`runner.store.redis.lua_limits`);
* ``totals``: lifetime counters per task and queue, field ``task<US>queue<US>what``
  (``enqueued``, ``failed``, ``retried``, ``dead``, ``cancelled``, ``duration``, and
  ``b<i>``: completed jobs in bucket ``i`` of :data:`runner.store.views.BUCKETS`, not
  cumulative, the last one past them all); only ever added to;
* ``fgroup:<hash>`` and ``fmsgs:<hash>``: the retrying and dead jobs per error type and
  message, by ``last_failed_at``, and their count per message of an error type (the
  Failures screen's group actions read one group, not every failed job); ``fgindexed``:
  set once they hold every failed job (data of an earlier release is indexed by the
  first group lookup: ``index_failures``);
* ``errors:<id>``: the attempt timeline (list of cjson rows); ``failed``: every failed
  attempt by ``failed_at``; ``errseq``: the attempt error counter;
* ``data:<id>``: the payload (apart, so the job hash stays a compact listpack);
* ``inbox``: jobs of the quick enqueue, each one entry with all its fields and payload
  (no hash nor index yet): the enqueue of a plain job is one RPUSH, and the claim
  writes and indexes the inbox in bulk (``absorb``);
* ``kv``: results; ``revoked``: huey's revocations (the claim says whether any exist);
  ``dispatch``: waiting dispatch jobs by ``run_at``;
  ``evjobs:<event>``: the jobs of an event by rowid; ``slive:<schedule>``: live job
  counts of a schedule by state.
* ``copied``, ``copied:jobs``, ``copied:events``: what ``migrate-to`` copied here from
  a SQLite file (see :mod:`runner.store.redis.lua_transfer`).
"""

from __future__ import annotations

from runner.store.views import BUCKETS

#: Held-back jobs a claim reads (and parks) at most per queue and level of priority.
SCAN = 5000

#: Inbox jobs a claim indexes at most (the rest wait for the next claim; see ``absorb``).
ABSORB = 2000

#: Seconds a script keeps the token of a call it ran (with its answer), so the same call
#: sent again, its reply lost with its connection, is not written twice: the client
#: gives up sending it again within seconds.
ONCE = 60

#: Helpers every job script starts with.
PRELUDE = r"""
local P = ARGV and ARGV[1]
local NULL = '\0'
local US = '\31'
local DISPATCH = 'runner.events.dispatch'
local WAITING = {available=true, scheduled=true, retrying=true}
local FINAL = {completed=true, dead=true, cancelled=true}
-- Held-back jobs one claim reads (and parks) at most, per queue and level.
local SCAN = @SCAN@
-- Inbox jobs one claim indexes at most.
local ABSORB = @ABSORB@
-- Seconds a call's token (``once:<token>``) is kept: longer than the client goes on
-- sending it again after lost connections.
local ONCE_SECONDS = @ONCE@
local IDX = {'state','queue','priority','run_at','crashes','schedule','unique_key','task',
             'rowid','attempt','lease_owner','started_at','max_attempts','event_id',
             'concurrency_key'}

local function opt(v) if v == NULL or v == false then return nil end return v end

-- ``ZADD key score member ...`` of many pairs, in chunks (Lua's stack bounds ``unpack``).
local function zadd_many(key, pairs)
  for from = 1, #pairs, 2000 do
    redis.call('ZADD', key, unpack(pairs, from, math.min(from + 1999, #pairs)))
  end
end

-- The inbox: jobs the quick enqueue wrote (``runner.store.redis.quick.push_request``)
-- that have no hash, payload key nor index yet, oldest first, each as
-- ``priority, run_at, created_at, max_attempts, task, id, queue, #args, #concurrency_key``
-- (each followed by US; an empty length is NULL), then args, concurrency key and the
-- payload end to end. ``absorb`` takes the oldest ``limit`` of them (nil: all), writes
-- each job as ``insert`` does, with rowids in inbox order, and indexes them in bulk,
-- one ZADD or HINCRBY per index and queue. The claim takes a bounded part; every
-- other script but a worker's hot ones takes the whole inbox before it reads, and
-- ``get`` does for a job it does not find while the inbox holds any, so no script
-- misses a job, and rowids keep the order of enqueueing.
local function absorb(limit)
  local key = P..'inbox'
  local n = redis.call('LLEN', key)
  if n == 0 then return 0 end
  if limit and n > limit then n = limit end
  local rows = redis.call('LRANGE', key, 0, n - 1)  -- (LPOP with a count: Redis 6.2)
  redis.call('LTRIM', key, n, -1)
  local rowid = redis.call('INCRBY', P..'rowid', #rows) - #rows
  local all, per, made = {}, {}, {}
  for _, e in ipairs(rows) do
    rowid = rowid + 1
    local f, at = {}, 1
    for i = 1, 9 do
      local sep = string.find(e, US, at, true)
      f[i] = string.sub(e, at, sep - 1)
      at = sep + 1
    end
    local id, q = f[6], f[7]
    local fields = {'id', id, 'task', f[5], 'queue', q, 'priority', f[1], 'attempt', 0,
      'max_attempts', f[4], 'run_at', f[2], 'created_at', f[3], 'crashes', 0, 'failures', 0,
      'rowid', rowid, 'state', 'available'}
    for i, name in ipairs({'args', 'concurrency_key'}) do
      if f[7 + i] ~= '' then
        local to = at + tonumber(f[7 + i])
        fields[#fields + 1] = name; fields[#fields + 1] = string.sub(e, at, to - 1)
        at = to
      end
    end
    redis.call('HSET', P..'job:'..id, unpack(fields))
    redis.call('SET', P..'data:'..id, string.sub(e, at))
    all[#all + 1] = rowid; all[#all + 1] = id
    local g = per[q]
    if not g then g = {ready={}, wait={}, n=0}; per[q] = g end
    local text = tostring(rowid)
    g.ready[#g.ready + 1] = -tonumber(f[1])
    g.ready[#g.ready + 1] = string.format('%020.6f', tonumber(f[2])) .. ':' ..
      string.rep('0', 12 - #text) .. text .. ':' .. id
    g.wait[#g.wait + 1] = f[2]; g.wait[#g.wait + 1] = id
    g.n = g.n + 1
    local total = f[5] .. US .. q .. US .. 'enqueued'
    made[total] = (made[total] or 0) + 1
  end
  zadd_many(P..'jobs', all)
  zadd_many(P..'state:available', all)
  for q, g in pairs(per) do
    zadd_many(P..'ready:'..q, g.ready)
    zadd_many(P..'waitall:'..q, g.wait)
    redis.call('SADD', P..'queues', q)
    redis.call('HINCRBY', P..'qstate', q..US..'available', g.n)
  end
  for total, count in pairs(made) do redis.call('HINCRBY', P..'totals', total, count) end
  return #rows
end

local function get(id)
  local v = redis.call('HMGET', P..'job:'..id, unpack(IDX))
  if not v[1] then
    if redis.call('LLEN', P..'inbox') == 0 then return nil end
    absorb(nil)  -- it may be in the inbox: write it first
    v = redis.call('HMGET', P..'job:'..id, unpack(IDX))
    if not v[1] then return nil end
  end
  local h = {id=id}
  for i, name in ipairs(IDX) do h[name] = v[i] or nil end
  return h
end

local function member(h)
  local rowid = tostring(h.rowid)
  return (h.run_key or string.format('%020.6f', tonumber(h.run_at))) .. ':' ..
         string.rep('0', 12 - #rowid) .. rowid .. ':' .. h.id
end

-- Held-back jobs are parked apart from their queue's ready (or suspect) set, in
-- ``park:<group>`` (same scores and members), so a claim does not read them again;
-- ``parked`` lists the groups. A group is ``<src><queue><US>t<US><task>`` (held by
-- the task: paused, at its concurrency or out of tokens) or
-- ``<src><queue><US>k<US><task><US><key>`` (its concurrency key at its limit).
local function park_group(src, q, task, key)
  if key then return src..q..US..'k'..US..task..US..key end
  return src..q..US..'t'..US..task
end

local function park(src, q, group, m, score)
  redis.call('ZREM', P..src..q, m)
  redis.call('ZADD', P..'park:'..group, score, m)
  redis.call('HSET', P..'parked', group, '1')
end

local woke = false
local function ready(h)
  if not woke then
    redis.call('PUBLISH', P..'wake', '1')  -- idle workers look again (see wakeups.py)
    woke = true
  end
  local m = member(h)
  local zs = (tonumber(h.crashes or 0) > 0) and 'suspect:' or 'ready:'
  redis.call('ZADD', P..zs..h.queue, -tonumber(h.priority), m)
end

-- Into the waiting indexes: ready when due at ``now`` (nil: let the claim decide).
local function wait(h, now)
  redis.call('SADD', P..'queues', h.queue)
  redis.call('ZADD', P..'waitall:'..h.queue, h.run_at, h.id)
  if now == nil or tonumber(h.run_at) > now then
    redis.call('ZADD', P..'delayed:'..h.queue, h.run_at, h.id)
  else
    ready(h)
  end
end

-- A queue without waiting jobs leaves ``queues``, so claims no longer visit it.
local function forget_if_empty(q)
  if redis.call('ZCARD', P..'waitall:'..q) == 0 then redis.call('SREM', P..'queues', q) end
end

-- A job out of its park group; a group left empty is no longer listed (a claim may
-- never visit its queue again to find it empty).
local function unpark_one(group, m)
  if redis.call('ZREM', P..'park:'..group, m) == 1
      and redis.call('EXISTS', P..'park:'..group) == 0 then
    redis.call('HDEL', P..'parked', group)
  end
end

-- Out of the waiting indexes. The ready member is rebuilt from ``run_at`` and the
-- rowid, so every change of ``run_at`` comes after this.
local function unwait(h)
  if redis.call('ZREM', P..'waitall:'..h.queue, h.id) == 1 then
    forget_if_empty(h.queue)
    local m = member(h)
    redis.call('ZREM', P..'ready:'..h.queue, m)
    redis.call('ZREM', P..'suspect:'..h.queue, m)
    redis.call('ZREM', P..'delayed:'..h.queue, h.id)
    if h.task and redis.call('EXISTS', P..'parked') == 1 then
      for _, src in ipairs({'ready:', 'suspect:'}) do
        unpark_one(park_group(src, h.queue, h.task), m)
        if h.concurrency_key then
          unpark_one(park_group(src, h.queue, h.task, h.concurrency_key), m)
        end
      end
    end
  end
end

-- A lifetime counter of the job's task and queue (see ``totals`` above).
local function tally(h, what, by)
  redis.call('HINCRBY', P..'totals', h.task..US..h.queue..US..what, by or 1)
end

local BUCKETS = {@BUCKETS@}
local function tally_completed(h, took)
  local i = #BUCKETS
  for n, le in ipairs(BUCKETS) do if took <= le then i = n - 1; break end end
  redis.call('HINCRBY', P..'totals', h.task..US..h.queue..US..'b'..i, 1)
  if took > 0 then
    redis.call('HINCRBYFLOAT', P..'totals', h.task..US..h.queue..US..'duration', took)
  end
end

local function bump(key, field, by)
  if redis.call('HINCRBY', key, field, by) <= 0 then redis.call('HDEL', key, field) end
end

-- A job of a unique key sits in ``ulive:<key>`` while it lives and ``ufin:<key>`` once
-- finished, by ``created_at``: the duplicate check reads live jobs only unless the
-- new job names a finished state.
local function unique_moves(h, new)
  local created = h.created_at or redis.call('HGET', P..'job:'..h.id, 'created_at')
  if FINAL[new] then
    redis.call('ZREM', P..'ulive:'..h.unique_key, h.id)
    redis.call('ZADD', P..'ufin:'..h.unique_key, created, h.id)
  else
    redis.call('ZREM', P..'ufin:'..h.unique_key, h.id)
    redis.call('ZADD', P..'ulive:'..h.unique_key, created, h.id)
  end
end

-- Jobs running per task and per (task, concurrency key): what concurrency limits count.
local function running(h, by)
  bump(P..'run', 't'..US..h.task, by)
  if h.concurrency_key then bump(P..'run', 'k'..US..h.task..US..h.concurrency_key, by) end
end

-- Failure groups (the dashboard's Failures actions): ``fgroup:<sha1 of type US message>``
-- holds the retrying and dead jobs of one error type and message by ``last_failed_at``
-- (0: none), ``fmsgs:<sha1 of type>`` counts them per message (NULL as NUL). A job
-- enters them as it enters a failed state and leaves them as it leaves, its error then
-- still the one it entered with (see ``restate``, ``rearm``, ``prune_jobs``).
local FAILED = {retrying=true, dead=true}
local function failure_group(id)
  local v = redis.call('HMGET', P..'job:'..id, 'error_type', 'error_message', 'last_failed_at')
  local t, m = v[1] or NULL, v[2] or NULL
  return P..'fgroup:'..redis.sha1hex(t..US..m), P..'fmsgs:'..redis.sha1hex(t), m,
         tonumber(v[3] or 0) or 0
end

local function failed_in(id)
  local group, messages, m, at = failure_group(id)
  if redis.call('ZADD', group, at, id) == 1 then redis.call('HINCRBY', messages, m, 1) end
end

local function failed_out(id)
  local group, messages, m = failure_group(id)
  if redis.call('ZREM', group, id) == 1 then bump(messages, m, -1) end
end

-- The one place a job changes state: every index that depends on it follows.
local function restate(h, new, finished_at, written)
  local old = h.state
  local id = h.id
  if old == new then
    if FINAL[new] and finished_at then redis.call('ZADD', P..'fin:'..new, finished_at, id) end
    return
  end
  if FAILED[old] and not FAILED[new] then failed_out(id) end
  if FAILED[new] and not FAILED[old] then failed_in(id) end
  if old then
    redis.call('ZREM', P..'state:'..old, id)
    bump(P..'qstate', h.queue..US..old, -1)
    if h.schedule then bump(P..'slive:'..h.schedule, old, -1) end
    if FINAL[old] then
      redis.call('ZREM', P..'fin:'..old, id)
      if h.unique_key then redis.call('HSETNX', P..'unique', h.unique_key, id) end
    end
    if old == 'executing' then
      redis.call('HDEL', P..'cancels', id)  -- a request names one attempt; this one is over
      running(h, -1)
      redis.call('ZREM', P..'leases', id)
      if h.lease_owner then redis.call('SREM', P..'inflight:'..h.lease_owner, id) end
      redis.call('HDEL', P..'job:'..id, 'lease_owner', 'lease_expires_at')
      h.lease_owner = nil
    end
  end
  if h.unique_key and (FINAL[new] or not old or FINAL[old]) then unique_moves(h, new) end
  redis.call('ZADD', P..'state:'..new, h.rowid, id)
  redis.call('HINCRBY', P..'qstate', h.queue..US..new, 1)
  if new == 'executing' then running(h, 1) end
  if h.schedule and not FINAL[new] then redis.call('HINCRBY', P..'slive:'..h.schedule, new, 1) end
  if FINAL[new] then
    if new ~= 'completed' then tally(h, new) end
    redis.call('ZADD', P..'fin:'..new, finished_at, id)
    if h.unique_key and redis.call('HGET', P..'unique', h.unique_key) == id then
      redis.call('HDEL', P..'unique', h.unique_key)
    end
  end
  if h.task == DISPATCH then
    if new == 'available' then redis.call('ZADD', P..'dispatch', h.run_at, id)
    else redis.call('ZREM', P..'dispatch', id) end
  end
  if not written then redis.call('HSET', P..'job:'..id, 'state', new) end
  h.state = new
end

-- A job travels as one argument: a msgpack array of its fields, nil for NULL (see
-- runner.store.redis.codec.job_args); ``run_key`` is ``run_at`` as ``member`` writes it.
local function read_jobs(at, count)
  local jobs = {}
  for i = 0, count - 1 do
    local f = cmsgpack.unpack(ARGV[at + i])
    jobs[#jobs + 1] = {id=f[1], task=f[2], queue=f[3], priority=f[4], data=f[5], args=f[6],
      max_attempts=f[7], run_at=f[8], unique_key=f[9], event_id=f[10], schedule=f[11],
      concurrency_key=f[12], unique_for=f[13], unique_states=f[14], run_key=f[15]}
  end
  return jobs, at + count
end

local function waiting_in(queue)
  return redis.call('ZCARD', P..'waitall:'..queue)
end

local LIVE = {available=true, scheduled=true, retrying=true, executing=true}

local function exact(x) return string.format('%.17g', x) end

-- The job that makes ``j`` a duplicate (its unique key, in its states, within its
-- window: the newest such), or nil.
local function holder(j, now)
  local states, finished = LIVE, false
  if j.unique_states then
    states = {}
    for s in string.gmatch(j.unique_states, '[^,]+') do
      states[s] = true
      if FINAL[s] then finished = true end
    end
  end
  local low = j.unique_for and ('(' .. exact(now - tonumber(j.unique_for))) or '-inf'
  local best, best_at = nil, nil
  for _, set in ipairs(finished and {'ulive:', 'ufin:'} or {'ulive:'}) do
    local rows = redis.call('ZREVRANGEBYSCORE', P..set..j.unique_key, '+inf', low, 'WITHSCORES')
    for i = 1, #rows, 2 do
      local at = tonumber(rows[i + 1])
      if best_at and at <= best_at then break end
      local s = redis.call('HGET', P..'job:'..rows[i], 'state')
      if s and states[s] then best, best_at = rows[i], at; break end
    end
  end
  return best
end

-- Bounds: count, then (queue, max_size, on_full) each.
local function read_bounds(at)
  local bounds = {}
  local n = tonumber(ARGV[at])
  for i = 0, n - 1 do
    local k = at + 1 + 3 * i
    bounds[ARGV[k]] = {max=tonumber(ARGV[k + 1]), on_full=ARGV[k + 2]}
  end
  return bounds, at + 1 + 3 * n
end

local function full(queue, waiting, max, adding)
  return 'QUEUEFULL ' .. queue .. US .. waiting .. US .. max .. US .. math.max(0, max - waiting)
         .. US .. adding
end

local function bump_backpressure(queue, what, n)
  if n > 0 then redis.call('HINCRBY', P..'backpressure', queue..US..what, n) end
end

local function insert(j, now)
  local rowid = redis.call('INCR', P..'rowid')
  local fields = {'id', j.id, 'task', j.task, 'queue', j.queue, 'priority', j.priority,
    'attempt', 0, 'max_attempts', j.max_attempts, 'run_at', j.run_at,
    'created_at', now, 'crashes', 0, 'failures', 0, 'rowid', rowid}
  for _, name in ipairs({'args', 'unique_key', 'event_id', 'schedule', 'concurrency_key'}) do
    if j[name] then fields[#fields + 1] = name; fields[#fields + 1] = j[name] end
  end
  local state = tonumber(j.run_at) > now and 'scheduled' or 'available'
  fields[#fields + 1] = 'state'; fields[#fields + 1] = state
  redis.call('HSET', P..'job:'..j.id, unpack(fields))
  redis.call('SET', P..'data:'..j.id, j.data)
  redis.call('ZADD', P..'jobs', rowid, j.id)
  if j.event_id then redis.call('ZADD', P..'evjobs:'..j.event_id, rowid, j.id) end
  if j.unique_key then redis.call('HSET', P..'unique', j.unique_key, j.id) end
  local h = {id=j.id, queue=j.queue, priority=j.priority, run_at=j.run_at, crashes=0,
             schedule=j.schedule, unique_key=j.unique_key, task=j.task, rowid=rowid,
             created_at=now, run_key=j.run_key}
  tally(h, 'enqueued')
  restate(h, state, nil, true)
  wait(h, now)
end

-- A job whose last attempt finished (retrying, dead) keeps that attempt's end, so its run
-- time stays true; one with no finished attempt ends now, without the start of an attempt
-- whose end is not known (handed back, or retried by hand since). As on SQL.
local function cancel(h, allowed, now, reason)
  if not allowed[h.state] then return 0 end
  unwait(h)
  local key = P..'job:'..h.id
  local finished = tonumber(redis.call('HGET', key, 'finished_at'))
  if not finished then
    finished = now
    redis.call('HDEL', key, 'started_at')
  end
  redis.call('HSET', key, 'finished_at', finished, 'reason', reason)
  restate(h, 'cancelled', finished)
  return 1
end

-- nil when the jobs fit, else the error to raise (nothing written yet): a taken id or
-- unique key, or a full queue.
local function refuse(jobs, queue_size)
  local seen_id, seen_key, adding = {}, {}, {}
  for _, j in ipairs(jobs) do
    if seen_id[j.id] or redis.call('EXISTS', P..'job:'..j.id) == 1 then
      return 'DUPLICATE id ' .. j.id
    end
    seen_id[j.id] = true
    if j.unique_key then
      if seen_key[j.unique_key] or holder(j, 0) then
        return 'DUPLICATE unique_key ' .. j.unique_key
      end
      seen_key[j.unique_key] = true
    end
    adding[j.queue] = (adding[j.queue] or 0) + 1
  end
  if queue_size > 0 then
    for queue, count in pairs(adding) do
      local waiting = redis.call('ZCARD', P..'waitall:'..queue)
      if waiting + count > queue_size then return full(queue, waiting, queue_size, count) end
    end
  end
  return nil
end

-- Waiting → cancelled for the jobs of a queue over its bound, due longest first, none of
-- spared (a set of ids).
local function drop_picked(queue, max, now, spared, nspared)
  local excess = redis.call('ZCARD', P..'waitall:'..queue) - max
  if excess <= 0 then return {} end
  local head = redis.call('ZRANGE', P..'waitall:'..queue, excess - 1 + nspared,
                          excess - 1 + nspared, 'WITHSCORES')
  if #head == 0 then head = redis.call('ZRANGE', P..'waitall:'..queue, -1, -1, 'WITHSCORES') end
  -- every job due no later than the last one dropped, so ties go by insertion order
  local ids = redis.call('ZRANGEBYSCORE', P..'waitall:'..queue, '-inf', head[2])
  local rows = {}
  for _, id in ipairs(ids) do
    local h = not spared[id] and get(id)
    if h then rows[#rows + 1] = {h=h, at=tonumber(h.run_at), rowid=tonumber(h.rowid)} end
  end
  table.sort(rows, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return a.rowid < b.rowid
  end)
  local reason = "dropped: queue '" .. queue .. "' was full (" .. max ..
                 " waiting; on_full drop_oldest)"
  local dropped = {}
  for i = 1, math.min(excess, #rows) do
    if cancel(rows[i].h, WAITING, now, reason) == 1 then dropped[#dropped + 1] = rows[i].h.id end
  end
  return dropped
end

-- The jobs written by the same call (spared, nspared of them) go last: an enqueue never
-- drops what it was called to write (a job due now is older than the jobs scheduled for
-- tomorrow), unless it alone writes more than the bound: then the oldest of its own.
local function drop_oldest(queue, max, now, spared, nspared)
  local dropped = drop_picked(queue, max, now, spared, nspared)
  if nspared > 0 then
    for _, id in ipairs(drop_picked(queue, max, now, {}, 0)) do dropped[#dropped + 1] = id end
  end
  bump_backpressure(queue, 'dropped', #dropped)
  return dropped
end

-- Jobs in, unless one would overfill a queue that does not drop: then the refusal
-- (nothing written but a rejection's count). Returns problem, duplicates (new id,
-- holder id, ...), dropped ids.
local function enqueue(jobs, now, queue_size, bounds)
  bounds = bounds or {}
  local dups, kept, fresh = {}, {}, {}
  for _, j in ipairs(jobs) do
    local other = nil
    if j.unique_key then other = kept[j.unique_key] or holder(j, now) end
    if other then
      dups[#dups + 1] = j.id; dups[#dups + 1] = other
    else
      if j.unique_key then kept[j.unique_key] = j.id end
      fresh[#fresh + 1] = j
    end
  end
  local seen, adding, order = {}, {}, {}
  for _, j in ipairs(fresh) do
    if seen[j.id] or redis.call('EXISTS', P..'job:'..j.id) == 1 then
      return 'DUPLICATE id ' .. j.id
    end
    seen[j.id] = true
    if not adding[j.queue] then order[#order + 1] = j.queue end
    adding[j.queue] = (adding[j.queue] or 0) + 1
  end
  local trim = {}
  for _, queue in ipairs(order) do
    local b = bounds[queue] or {max=queue_size, on_full='reject'}
    if b.max > 0 then
      local waiting = redis.call('ZCARD', P..'waitall:'..queue)
      if waiting + adding[queue] > b.max then
        if b.on_full == 'drop_oldest' then
          trim[#trim + 1] = {queue, b.max}
        else
          if b.on_full == 'reject' then
            local refused = 0
            for _, j in ipairs(jobs) do if j.queue == queue then refused = refused + 1 end end
            bump_backpressure(queue, 'rejected', refused)
          end
          return full(queue, waiting, b.max, adding[queue])
        end
      end
    end
  end
  for _, j in ipairs(fresh) do insert(j, now) end
  local dropped = {}
  for _, t in ipairs(trim) do
    local spared = {}
    for _, j in ipairs(fresh) do if j.queue == t[1] then spared[j.id] = true end end
    for _, id in ipairs(drop_oldest(t[1], t[2], now, spared, adding[t[1]])) do
      dropped[#dropped + 1] = id
    end
  end
  return nil, dups, dropped
end

-- Attempts the task asked for (Retry): a job given a new allowance (retried by hand,
-- enqueued again) keeps them apart from it, as the SQL backends do.
local function asked(h)
  return tonumber(redis.call('HGET', P..'job:'..h.id, 'requested') or 0)
end

-- A finished job runs again as the same row (huey enqueueing a Task a second time).
local function rearm(j, now)
  local h = get(j.id)
  if not h or not FINAL[h.state] then return false end
  if j.unique_key and redis.call('HEXISTS', P..'unique', j.unique_key) == 1 then return false end
  local key = P..'job:'..j.id
  if FAILED[h.state] then failed_out(h.id) end  -- a dead job leaves its failure group
  if h.unique_key then
    redis.call('ZREM', P..'ulive:'..h.unique_key, h.id)
    redis.call('ZREM', P..'ufin:'..h.unique_key, h.id)
  end
  redis.call('HDEL', key, 'started_at', 'finished_at', 'reason', 'lease_owner',
             'lease_expires_at', 'unique_key', 'event_id', 'schedule', 'args', 'concurrency_key')
  redis.call('SET', P..'data:'..j.id, j.data)
  local fields = {'task', j.task, 'queue', j.queue, 'priority', j.priority,
    'max_attempts', tonumber(h.attempt) + tonumber(j.max_attempts) - asked(h),
    'run_at', j.run_at,
    'crashes', 0}
  for _, name in ipairs({'args', 'unique_key', 'event_id', 'schedule', 'concurrency_key'}) do
    if j[name] then fields[#fields + 1] = name; fields[#fields + 1] = j[name] end
  end
  redis.call('HSET', key, unpack(fields))
  -- leave the finished state under the old labels; enter the new one under the new
  redis.call('ZREM', P..'state:'..h.state, h.id)
  redis.call('ZREM', P..'fin:'..h.state, h.id)
  bump(P..'qstate', h.queue..US..h.state, -1)
  -- the listings by queue and by task follow the job (see ``index_jobs``)
  if h.queue ~= j.queue then
    redis.call('ZREM', P..'qjobs:'..h.queue, h.id)
    redis.call('ZADD', P..'qjobs:'..j.queue, h.rowid, h.id)
  end
  if h.task ~= j.task then
    if h.task then redis.call('ZREM', P..'tjobs:'..h.task, h.id) end
    redis.call('ZADD', P..'tjobs:'..j.task, h.rowid, h.id)
  end
  h.state = nil
  h.queue, h.priority, h.run_at, h.crashes = j.queue, j.priority, j.run_at, 0
  h.run_key = j.run_key
  h.task, h.schedule, h.unique_key, h.event_id = j.task, j.schedule, j.unique_key, j.event_id
  if j.unique_key then redis.call('HSET', P..'unique', j.unique_key, j.id) end
  if j.event_id then redis.call('ZADD', P..'evjobs:'..j.event_id, h.rowid, j.id) end
  restate(h, tonumber(j.run_at) > now and 'scheduled' or 'available')
  wait(h, now)
  return true
end

local function set_fields(id, fields, drop)
  if #fields > 0 then redis.call('HSET', P..'job:'..id, unpack(fields)) end
  if drop and #drop > 0 then redis.call('HDEL', P..'job:'..id, unpack(drop)) end
end

-- Results and next steps of a settled job (see transitions.write_follow_ups).
local function follow_ups(job_id, results, jobs, now)
  for _, r in ipairs(results) do redis.call('HSET', P..'kv', r[1], r[2]) end
  for _, j in ipairs(jobs) do
    if redis.call('EXISTS', P..'job:'..j.id) == 0 then
      if not (j.unique_key and holder(j, now)) then insert(j, now) end
    elseif not rearm(j, now) then
      redis.call('HSET', P..'job:'..job_id, 'reason',
                 string.sub('next step ' .. j.id .. ' not enqueued: a job with id ' .. j.id ..
                            ' exists', 1, 500))
    end
  end
end

-- An ack: job id, attempt, started_at, finished_at, results (count, pairs), jobs (count, each).
local function read_ack(at)
  local ack = {id=ARGV[at], attempt=ARGV[at+1], started_at=opt(ARGV[at+2]),
               finished_at=ARGV[at+3], results={}}
  local n = tonumber(ARGV[at+4])
  at = at + 5
  for i = 1, n do ack.results[i] = {ARGV[at], ARGV[at+1]}; at = at + 2 end
  local count = tonumber(ARGV[at])
  ack.jobs, at = read_jobs(at + 1, count)
  return ack, at
end

-- Whether an attempt (nil: whichever) still holds a job, so its outcome may be written:
-- while it runs, and handed back (an expired lease) until a later attempt claims the job.
-- A worker that stalled past its lease reports late; that must not move the job the
-- later attempt runs now.
local function holds(h, attempt)
  if attempt and tonumber(h.attempt) ~= tonumber(attempt) then return false end
  return h.state == 'executing' or h.state == 'available'
end

local function complete(ack)
  local h = get(ack.id)
  if not h or not holds(h, ack.attempt) then return false end
  unwait(h)
  if ack.started_at then redis.call('HSET', P..'job:'..h.id, 'started_at', ack.started_at) end
  redis.call('HSET', P..'job:'..h.id, 'finished_at', ack.finished_at)
  redis.call('HDEL', P..'job:'..h.id, 'reason')
  restate(h, 'completed', ack.finished_at)
  local started = tonumber(ack.started_at or h.started_at or ack.finished_at)
  tally_completed(h, math.max(0, tonumber(ack.finished_at) - started))
  follow_ups(h.id, ack.results, ack.jobs, tonumber(ack.finished_at))
  return true
end

local function read_acks(at)
  local count = tonumber(ARGV[at])
  at = at + 1
  local acks = {}
  for i = 1, count do acks[i], at = read_ack(at) end
  return acks, at
end

local function record_failure(h, attempt, f, worker, now)
  local seq = redis.call('INCR', P..'errseq')
  local row = cjson.encode({seq, tonumber(attempt), f.kind, f.error_type or cjson.null,
    f.message or cjson.null, f.traceback or cjson.null, worker or cjson.null,
    f.started_at and tonumber(f.started_at) or cjson.null, now})
  redis.call('RPUSH', P..'errors:'..h.id, row)
  redis.call('ZADD', P..'failed', now, seq .. ':' .. attempt .. ':' .. h.id)
  tally(h, 'failed')
end

-- A failed attempt (f: kind, error_type, message, traceback, started_at): 'retrying' at
-- run_at (data: the task for its next attempt) or 'dead'; the caller checked it holds the job.
local function fail_attempt(h, state, attempt, f, worker, now, run_at, reason, data)
  unwait(h)
  record_failure(h, attempt, f, worker, now)
  local key = P..'job:'..h.id
  local first = redis.call('HGET', key, 'first_failed_at')
  redis.call('HINCRBY', key, 'failures', 1)
  -- Attempts the task asked for (JobRow.requested), which the SQL backends count in the
  -- timeline: kept as a field, or every listing would read each job's timeline.
  if f.kind == 'retry' then redis.call('HINCRBY', key, 'requested', 1) end
  local fields = {'first_failed_at', first or now, 'last_failed_at', now,
    'finished_at', now}
  if f.error_type then fields[#fields+1] = 'error_type'; fields[#fields+1] = f.error_type end
  if f.message then
    fields[#fields+1] = 'error_message'; fields[#fields+1] = string.sub(f.message, 1, 2000)
  end
  if f.traceback then fields[#fields+1] = 'last_error'; fields[#fields+1] = f.traceback end
  if run_at then fields[#fields+1] = 'run_at'; fields[#fields+1] = run_at; h.run_at = run_at end
  if data then redis.call('SET', P..'data:'..h.id, data) end
  if f.started_at then fields[#fields+1] = 'started_at'; fields[#fields+1] = f.started_at end
  if reason then fields[#fields+1] = 'reason'; fields[#fields+1] = reason end
  redis.call('HSET', key, unpack(fields))
  if not reason then redis.call('HDEL', key, 'reason') end
  if not f.error_type then redis.call('HDEL', key, 'error_type') end
  if not f.message then redis.call('HDEL', key, 'error_message') end
  if not f.traceback then redis.call('HDEL', key, 'last_error') end
  restate(h, state, now)
  if state == 'retrying' then tally(h, 'retried'); wait(h, now) end
end

local function charge(h, message, crash_limit, error_type, now)
  local crashes = tonumber(h.crashes or 0) + 1
  record_failure(h, h.attempt, {kind='crash', error_type=error_type, message=message,
                 traceback='', started_at=h.started_at}, h.lease_owner, now)
  local key = P..'job:'..h.id
  if crash_limit > 0 and crashes >= crash_limit then
    local what = (error_type == 'WorkerDied') and 'worker died' or 'stuck'
    -- The crash that kills it is its last failure (as on SQL), before restate files it.
    local times = (crashes == 1) and 'once' or (crashes .. ' times')
    redis.call('HSET', key, 'crashes', crashes, 'finished_at', now, 'reason',
      what .. ' (' .. times .. ' while running it)', 'error_type', error_type,
      'error_message', message, 'last_failed_at', now)
    redis.call('HSETNX', key, 'first_failed_at', now)
    restate(h, 'dead', now)
    return true
  end
  local reason = (error_type == 'WorkerDied') and 'worker died; requeued' or 'stuck; requeued'
  redis.call('HSET', key, 'crashes', crashes, 'run_at', now, 'reason', reason)
  tally(h, 'retried')
  h.crashes, h.run_at = crashes, now
  restate(h, 'available')
  wait(h, now)
  return false
end

local function retry_now(h, now, reason)
  if not (h.state == 'dead' or h.state == 'cancelled' or h.state == 'retrying'
          or h.state == 'completed') then return 0 end
  unwait(h)
  redis.call('HSET', P..'job:'..h.id, 'run_at', now,
             -- the budget it has when more (as on SQL: the task's policy still retries it)
             'max_attempts', math.max(tonumber(h.max_attempts) or 1,
                                      tonumber(h.attempt) + 1 - asked(h)),
             'reason', reason, 'crashes', 0)
  redis.call('HDEL', P..'job:'..h.id, 'finished_at')
  h.run_at, h.crashes = now, 0
  restate(h, 'available')
  wait(h, now)
  return 1
end

-- Paused queues and tasks (``pauses``: ``kind<US>name`` -> ``paused<US>at<US>by``).
local function paused_sets()
  local queues, tasks = {}, {}
  local rows = redis.call('HGETALL', P..'pauses')
  for i = 1, #rows, 2 do
    if string.sub(rows[i + 1], 1, 1) == '1' then
      local sep = string.find(rows[i], US, 1, true)
      local kind, name = string.sub(rows[i], 1, sep - 1), string.sub(rows[i], sep + 1)
      if kind == 'queue' then queues[name] = true else tasks[name] = true end
    end
  end
  return queues, tasks
end

-- The best ``n`` members of a queue's ready (or suspect) set, as claim candidates,
-- parking jobs of ``skip`` tasks on the way (at most ``SCAN`` of them a claim; the
-- second value says the set was not read to its end for that reason).
local function heads(src, q, n, skip)
  local out = {}
  if not next(skip) then
    local top = redis.call('ZRANGE', P..src..q, 0, n - 1, 'WITHSCORES')
    for i = 1, #top, 2 do out[#out + 1] = {q=q, m=top[i], s=tonumber(top[i + 1])} end
    return out, false
  end
  local from, chunk, parked = 0, math.max(n, 100), 0
  while #out < n do
    if parked >= SCAN then return out, true end
    local top = redis.call('ZRANGE', P..src..q, from, from + chunk - 1, 'WITHSCORES')
    for i = 1, #top, 2 do
      local task = redis.call('HGET', P..'job:'..string.sub(top[i], 35), 'task')
      if skip[task] and src == 'ready:' then
        park(src, q, park_group(src, q, task), top[i], top[i + 1])
        parked = parked + 1
      elseif skip[task] then
        from = from + 1  -- crashed jobs (claimed alone, seldom many) stay where they are
      else
        out[#out + 1] = {q=q, m=top[i], s=tonumber(top[i + 1])}
        from = from + 1
        if #out >= n then break end
      end
    end
    if #top < 2 * chunk then break end
  end
  return out, false
end

-- Parked jobs back into their ready (or suspect) set, the best ``n`` of each group of
-- ``queues`` that ``free(kind, task, key)`` says may run now: enough for this claim,
-- and in order (no job overtakes a better one still parked).
local function unpark(src, queues, n, free)
  local groups = redis.call('HKEYS', P..'parked')
  if #groups == 0 then return end
  local mine = {}
  for _, q in ipairs(queues) do mine[q] = true end
  for _, g in ipairs(groups) do
    local a = string.find(g, US, 1, true)
    local head, kind = string.sub(g, 1, a - 1), string.sub(g, a + 1, a + 1)
    local rest = string.sub(g, a + 3)
    local task, key = rest, nil
    if kind == 'k' then
      local b = string.find(rest, US, 1, true)
      task, key = string.sub(rest, 1, b - 1), string.sub(rest, b + 1)
    end
    local q = string.sub(head, #src + 1)
    if string.sub(head, 1, #src) == src and mine[q] and free(kind, task, key) then
      local rows = redis.call('ZPOPMIN', P..'park:'..g, n)
      for i = 1, #rows, 2 do redis.call('ZADD', P..src..q, rows[i + 1], rows[i]) end
      if #rows < 2 * n or redis.call('EXISTS', P..'park:'..g) == 0 then
        redis.call('HDEL', P..'parked', g)
      end
    end
  end
end
""".replace("@BUCKETS@", ", ".join(repr(float(b)) for b in BUCKETS)).replace(
    "@SCAN@", str(SCAN)).replace("@ABSORB@", str(ABSORB)).replace("@ONCE@", str(ONCE))
