"""Lua functions of schedules (the job helpers of the prelude included).

``sched:<name>`` hash, ``schedules`` (names, lexical), ``sched_due`` (active names by
``next_fire_at``), ``runs:<name>`` (slot records, cjson, by ``manual:slot``) and
``runt:<name>`` (those fields by ``fired_at``); ``version`` changes with every
schedule write (the scheduler's cheap poll).
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
    # ARGV: now, then names: those marked orphaned lose the mark, next_fire_at kept
    "adopt_schedules": r"""
local now = ARGV[2]
local adopted = {}
for i = 3, #ARGV do
  local name = ARGV[i]
  local key = P..'sched:'..name
  if redis.call('HGET', key, 'orphaned') == '1' then
    redis.call('HSET', key, 'orphaned', 0, 'updated_at', now)
    local v = redis.call('HMGET', key, 'enabled', 'paused', 'next_fire_at')
    if v[1] == '1' and v[2] ~= '1' and v[3] then
      redis.call('ZADD', P..'sched_due', v[3], name)
    end
    adopted[#adopted + 1] = name
  end
end
if #adopted > 0 then redis.call('INCR', P..'version') end
return adopted
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
    # ARGV: name, now, queue_size, job; returns the live job holding its unique key
    # (nothing written), or nil
    "record_manual_run": r"""
redis.call('INCR', P..'version')
local name, now = ARGV[2], tonumber(ARGV[3])
local jobs = read_jobs(5, 1)
local problem, dups = enqueue(jobs, now, tonumber(ARGV[4]))
if problem then return redis.error_reply(problem) end
if dups and #dups > 0 then return dups[2] end
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
return false
""",
    # ARGV: fired_at, queue_size, name, expected, next_fire_at, overlap, dropped, nslots,
    #       slots..., jobs (one per slot)
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
      local problem, dups = enqueue({j}, fired_at, queue_size)
      if problem then
        reason = "queue '" .. j.queue .. "' is full"
      elseif dups and #dups > 0 then
        reason = 'unique: job ' .. dups[2] .. ' holds its key'
      end
      if reason then
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
-- dated as schedule_rules.fired_values dates it: by the slot it skipped when the last ran
local skip_at = ARGV[2]
if #enqueued > 0 and enqueued[#enqueued][1] == tonumber(slots[nslots]) then
  skip_at = (#skipped > 0) and skipped[#skipped][1] or expected
end
if skip_reason then
  for _, f in ipairs({'last_skip_at', skip_at, 'last_skip_reason', skip_reason}) do
    fields[#fields + 1] = f
  end
end
redis.call('HSET', key, unpack(fields))
redis.call('HINCRBY', key, 'fired', #enqueued)
redis.call('HINCRBY', key, 'skipped', #skipped + dropped)
return cjson.encode({won=true, enqueued=enqueued, skipped=skipped})
""",
}
