"""Lua functions of the lifeline and of upkeep (the job helpers of the prelude included).

Heartbeats extend leases (``leases``, each job's ``lease_expires_at``); ``recover``
puts the jobs of dead workers back or buries them (``inflight:<owner>``, ``owners``);
by-hand actions and retention's deletes; huey's locks (``kvexp``) and named leases
(``lease:<name>``), both timed by the caller's clock; huey's revocations, stamped with
the server's clock (``revat``) so that a clear leaves a newer revocation in place.
"""

from __future__ import annotations

BODIES: dict[str, str] = {
    # ARGV: owner, now, lease_seconds, worker fields (count, pairs...), ids...
    "heartbeat": r"""
local owner, now, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local wkey = P..'worker:'..owner
local n = tonumber(ARGV[5])
local at = 6
local known = redis.call('EXISTS', wkey)
if known == 1 then
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
-- The reply: the server's clock (seconds, microseconds), whether the worker's hash was
-- there (1/0), then the jobs it holds.
local reply = redis.call('TIME')
reply[3] = known
for i = at, #ARGV do
  local id = ARGV[i]
  local v = redis.call('HMGET', P..'job:'..id, 'state', 'lease_owner', 'lease_expires_at')
  if v[1] == 'executing' and v[2] == owner then
    -- Never shortened: a clock that jumped back keeps the expiry it wrote before.
    local expires = math.max(tonumber(v[3]) or 0, now + lease)
    redis.call('HSET', P..'job:'..id, 'lease_expires_at', expires)
    redis.call('ZADD', P..'leases', expires, id)
    reply[#reply + 1] = id
  end
end
return reply
""",
    # ARGV: now, expired_before (leases that expired before it count), crash_limit, me,
    # ndead, dead owners..., then (id, owner, attempt, requeue)*,
    # requeue the reason of an attempt its worker is not running (back uncharged), or ''.
    "recover": r"""
local now, expired_before = tonumber(ARGV[2]), tonumber(ARGV[3])
local crash_limit, me = tonumber(ARGV[4]), opt(ARGV[5])
local nd = tonumber(ARGV[6])
local dead = {}
for i = 1, nd do dead[ARGV[6 + i]] = true end
local requeued, buried = {}, {}
for at = 7 + nd, #ARGV, 4 do
  local id, owner, attempt, requeue = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local h = get(id)
  if h and h.state == 'executing' and h.lease_owner == owner and h.attempt == attempt then
    local expires = tonumber(redis.call('HGET', P..'job:'..id, 'lease_expires_at') or now)
    local asked = redis.call('HGET', P..'cancels', id)
    local sep = asked and string.find(asked, US, 1, true)
    if not (expires < expired_before or dead[owner]) then
      -- its worker still holds it
    elseif sep and string.sub(asked, 1, sep - 1) == attempt then
      -- someone cancelled it: it does not run again
      redis.call('HSET', P..'job:'..id, 'finished_at', now, 'reason', 'cancelled by ' ..
        string.sub(asked, sep + 1) .. '; its worker was gone before it could stop it')
      restate(h, 'cancelled', now)
    else
      if requeue ~= '' then
        redis.call('HSET', P..'job:'..id, 'attempt', tonumber(attempt) - 1, 'run_at', now,
          'reason', requeue)
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
    # ARGV: job_id, attempt, owner, kind, error_type, message, traceback, f_started_at,
    #       now, run_at (NULL: dead), reason, data
    "charge_stuck": r"""
local h = get(ARGV[2])
if not h or h.state ~= 'executing' or h.attempt ~= ARGV[3] or h.lease_owner ~= ARGV[4] then
  return false
end
local now = tonumber(ARGV[10])
local asked = redis.call('HGET', P..'cancels', ARGV[2])
local sep = asked and string.find(asked, US, 1, true)
if sep and string.sub(asked, 1, sep - 1) == ARGV[3] then
  -- Someone cancelled it and its worker could not stop it: retried, it would run again.
  redis.call('HSET', P..'job:'..ARGV[2], 'finished_at', now, 'reason',
    'cancelled by ' .. string.sub(asked, sep + 1) .. ' while running')
  restate(h, 'cancelled', now)
  return 'cancelled'
end
local f = {kind=ARGV[5], error_type=opt(ARGV[6]), message=opt(ARGV[7]), traceback=opt(ARGV[8]),
           started_at=opt(ARGV[9])}
local run_at = opt(ARGV[11])
local state = run_at and 'retrying' or 'dead'
fail_attempt(h, state, ARGV[3], f, ARGV[4], now, run_at, opt(ARGV[12]), opt(ARGV[13]))
return state
""",
    # ARGV: verb (retry/cancel/discard), now, up_to_rowid (0: any), reason ('': the verb's
    #       "... by hand"), nstates, states..., ids...
    "by_hand": r"""
local verb, now, up_to = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local reasons = {retry='retried by hand', cancel='cancelled by hand', discard='discarded by hand'}
local reason = ARGV[5] ~= '' and ARGV[5] or reasons[verb]
local allowed = {}
local ns = tonumber(ARGV[6])
for i = 1, ns do allowed[ARGV[6 + i]] = true end
local changed = {}
for i = 7 + ns, #ARGV do
  local h = get(ARGV[i])
  if h and allowed[h.state] and (up_to == 0 or tonumber(h.rowid) <= up_to) then
    local n
    if verb == 'retry' then
      n = retry_now(h, now, reason)
    else
      n = cancel(h, allowed, now, reason)
    end
    if n == 1 then changed[#changed + 1] = h.rowid end
  end
end
return changed
""",
    # ARGV: verb (retry/discard), now, up_to_rowid, failed_until, group (its hash), skip,
    #       limit: the next ``limit`` jobs of a failure group past the first ``skip``
    #       (left alone before) that failed by ``failed_until``, changed unless added
    #       after ``up_to_rowid``. Returns {changed, read}.
    "failure_group_step": r"""
local verb, now, up_to = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', P..'fgroup:'..ARGV[6], '-inf', ARGV[5],
                       'LIMIT', tonumber(ARGV[7]), tonumber(ARGV[8]))
local changed = 0
for _, id in ipairs(ids) do
  local h = get(id)
  if h and FAILED[h.state] and tonumber(h.rowid) <= up_to then
    if verb == 'retry' then changed = changed + retry_now(h, now, 'retried by hand')
    else changed = changed + cancel(h, FAILED, now, 'discarded by hand') end
  end
end
return {changed, #ids}
""",
    # ARGV: state (retrying/dead), after (rowid), limit: the failure groups brought up to
    # date with the next ``limit`` jobs of the state (data an earlier release wrote);
    # returns the last rowid read, 0 once there are no more.
    "index_failures": r"""
local limit = tonumber(ARGV[4])
local rows = redis.call('ZRANGEBYSCORE', P..'state:'..ARGV[2], '(' .. ARGV[3], '+inf',
                        'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #rows, 2 do failed_in(rows[i]) end
if #rows < 2 * limit then return 0 end
return rows[#rows]
""",
    # ARGV: completed_before, dead_before, limit
    "prune_jobs": r"""
local limits = {completed=ARGV[2], cancelled=ARGV[2], dead=ARGV[3]}
local budget = tonumber(ARGV[4])
local jobs, logs = 0, 0
-- a copied job's id goes with it once copies say how far they read (see lua_transfer)
local read = redis.call('HGET', P..'copied', 'jobs_read')
local forgot = false
for _, state in ipairs({'completed', 'cancelled', 'dead'}) do
  if budget <= 0 then break end
  local ids = redis.call('ZRANGEBYSCORE', P..'fin:'..state, '-inf', '(' .. limits[state],
                         'LIMIT', 0, budget)
  for _, id in ipairs(ids) do
    local h = get(id)
    if h then
      if FAILED[h.state] then failed_out(id) end
      redis.call('ZREM', P..'state:'..h.state, id)
      bump(P..'qstate', h.queue..US..h.state, -1)
      redis.call('ZREM', P..'jobs', id)
      redis.call('ZREM', P..'qjobs:'..h.queue, id)
      if h.task then redis.call('ZREM', P..'tjobs:'..h.task, id) end
      if h.unique_key then
        redis.call('ZREM', P..'ufin:'..h.unique_key, id)
        redis.call('ZREM', P..'ulive:'..h.unique_key, id)
      end
      if h.event_id then redis.call('ZREM', P..'evjobs:'..h.event_id, id) end
      redis.call('DEL', P..'job:'..id, P..'errors:'..id, P..'data:'..id)
      redis.call('HDEL', P..'kv', id)
      local logids = redis.call('ZRANGE', P..'joblogs:'..id, 0, -1)
      for _, lid in ipairs(logids) do
        logs = logs + redis.call('ZREMRANGEBYSCORE', P..'logs', lid, lid)
      end
      redis.call('DEL', P..'joblogs:'..id)
      redis.call('HDEL', P..'logbytes', id)
      if read and redis.call('SREM', P..'copied:jobs', id) == 1 then forgot = true end
    end
    redis.call('ZREM', P..'fin:'..state, id)
    jobs = jobs + 1
    budget = budget - 1
  end
end
if forgot then redis.call('HSET', P..'copied', 'jobs_upto', read) end
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
redis.call('HDEL', P..'revat', key)
if ARGV[4] ~= NULL then
  redis.call('HSET', P..'kvexp', key, tonumber(ARGV[5]) + tonumber(ARGV[4]))
else
  redis.call('HDEL', P..'kvexp', key)
end
return 1
""",
    # ARGV: key, value. A revocation, stamped with the server's clock in ``revat``.
    "put_revocation": r"""
local key, t = ARGV[2], redis.call('TIME')
redis.call('HSET', P..'revoked', key, ARGV[3])
redis.call('HDEL', P..'kvexp', key)
redis.call('HSET', P..'revat', key, t[1]..'.'..string.format('%06d', tonumber(t[2])))
""",
    # ARGV: key, now, written_by. Deletes a revocation written no later than written_by (or
    # at an unknown time); 1 when a live one was deleted.
    "clear_revocation": r"""
local key = ARGV[2]
local at = redis.call('HGET', P..'revat', key)
if at and tonumber(at) > tonumber(ARGV[4]) then return 0 end
local expires = redis.call('HGET', P..'kvexp', key)
local gone = redis.call('HDEL', P..'revoked', key)
redis.call('HDEL', P..'kvexp', key)
redis.call('HDEL', P..'revat', key)
if gone == 0 or (expires and tonumber(expires) < tonumber(ARGV[3])) then return 0 end
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
}
