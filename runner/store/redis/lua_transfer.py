"""Lua functions of ``migrate-to``: a SQLite file's rows written into Redis, each once.

A copied job enters its state through ``restate`` and ``wait`` (:mod:`.lua_jobs`),
so every index a transition keeps (states, queues, waiting sets, unique keys,
schedules' live counts, finished sets, dispatch jobs) holds it as if it had got
there on Redis; its failed attempts and its counters are the file's, so nothing is
counted as it arrives (the copied totals hold it) but what the copy settled of a job
the file has running (its outcome, the crash charged to it), which the file never
counted.

``copied``: ``source`` (the file copied here), ``log`` (the id of the last log record
copied from it), ``c:<key><US><field>`` (a counter's value in the file when last
copied) and ``v:<key>`` (the digest of a revocation copied: one restored or used up on
Redis since is not brought back), ``jobs_read`` and ``events_read`` (the rowid in the
file up to which copies read, raised with the writes of the rows up to it) and
``jobs_upto`` and ``events_upto`` (the read marks as they were when retention last
forgot copied ids: later copies read the file past them only); ``copied:jobs`` and
``copied:events``: the ids copied and still held on Redis, so a copy run again
writes none of them twice. Retention forgets an id as it prunes its job or event
(``prune_jobs``, ``prune_events``), moving the read mark to ``*_upto`` so that a
later copy does not read that row again; an id copied by an earlier release, when
no read mark was kept, is never forgotten.

Values arrive as strings (floats written exactly by the client); rows the client
encodes as JSON are stored as they come, behind the id the script gives them.
"""

from __future__ import annotations

#: Raises a mark of how far copies read the file (``copied``'s ``jobs_read`` or
#: ``events_read``) with the writes of the rows up to it.
_READ_UP_TO = r"""
local function read_up_to(mark, rowid)
  local before = tonumber(redis.call('HGET', P..'copied', mark) or '0')
  if tonumber(rowid) > before then redis.call('HSET', P..'copied', mark, rowid) end
end
"""

BODIES: dict[str, str] = {
    # ARGV: now, the rowid in the file of the last job, count, then per job: fields (JSON
    #       object of strings, NULLs left out), payload, counted (the counters the job
    #       adds, space separated: what the copy settled, which the file never counted),
    #       nerrors, per error: attempt, failed_at, row (JSON array, no seq).
    # Returns the jobs and the failed attempts written.
    "copy_jobs": r"""
local now, at, written, failures = tonumber(ARGV[2]), 5, 0, 0
read_up_to('jobs_read', ARGV[3])
for _ = 1, tonumber(ARGV[4]) do
  local f, data, ne = cjson.decode(ARGV[at]), ARGV[at + 1], tonumber(ARGV[at + 3])
  local counted = ARGV[at + 2]
  local errors = at + 4
  at = errors + 3 * ne
  local id = f.id
  local live = not FINAL[f.state]
  -- a live job whose unique key a job of Redis holds stays behind, as on PostgreSQL
  if redis.call('SISMEMBER', P..'copied:jobs', id) == 0
      and redis.call('EXISTS', P..'job:'..id) == 0
      and not (f.unique_key and live and redis.call('HEXISTS', P..'unique', f.unique_key) == 1)
  then
    local rowid = redis.call('INCR', P..'rowid')
    local fields = {'rowid', rowid}
    for name, value in pairs(f) do fields[#fields + 1] = name; fields[#fields + 1] = value end
    redis.call('HSET', P..'job:'..id, unpack(fields))
    redis.call('SET', P..'data:'..id, data)
    redis.call('ZADD', P..'jobs', rowid, id)
    if f.event_id then redis.call('ZADD', P..'evjobs:'..f.event_id, rowid, id) end
    if f.unique_key and live then redis.call('HSET', P..'unique', f.unique_key, id) end
    local h = {id=id, queue=f.queue, priority=f.priority, run_at=f.run_at,
               crashes=f.crashes or 0, schedule=f.schedule, unique_key=f.unique_key,
               task=f.task, rowid=rowid, created_at=f.created_at,
               concurrency_key=f.concurrency_key}
    restate(h, f.state, f.finished_at or f.created_at, true)
    -- the copied totals hold the file's outcomes: restate counted this one again
    if not live and f.state ~= 'completed' then tally(h, f.state, -1) end
    for what in string.gmatch(counted, '%S+') do tally(h, what) end
    if live then wait(h, now) end
    for e = errors, at - 1, 3 do
      local seq = redis.call('INCR', P..'errseq')
      redis.call('RPUSH', P..'errors:'..id, '[' .. seq .. ',' .. string.sub(ARGV[e + 2], 2))
      redis.call('ZADD', P..'failed', ARGV[e + 1], seq .. ':' .. ARGV[e] .. ':' .. id)
      -- the attempts the task asked for, kept on the job as a failure written here keeps them
      if cjson.decode(ARGV[e + 2])[2] == 'retry' then
        redis.call('HINCRBY', P..'job:'..id, 'requested', 1)
      end
      failures = failures + 1
    end
    redis.call('SADD', P..'copied:jobs', id)
    written = written + 1
  end
end
return {written, failures}
""",
    # ARGV: count, then per result: key, value, expires_at (NULL: none)
    "copy_results": r"""
local written = 0
for i = 3, 2 + 3 * tonumber(ARGV[2]), 3 do
  if redis.call('HSETNX', P..'kv', ARGV[i], ARGV[i + 1]) == 1 then
    if ARGV[i + 2] ~= NULL then redis.call('HSET', P..'kvexp', ARGV[i], ARGV[i + 2]) end
    written = written + 1
  end
end
return written
""",
    # ARGV: count, then per schedule: fields (JSON object of strings)
    "copy_schedules": r"""
local written = 0
for i = 3, 2 + tonumber(ARGV[2]) do
  local f = cjson.decode(ARGV[i])
  local key = P..'sched:'..f.name
  if redis.call('EXISTS', key) == 0 then
    local fields = {}
    for name, value in pairs(f) do fields[#fields + 1] = name; fields[#fields + 1] = value end
    redis.call('HSET', key, unpack(fields))
    redis.call('ZADD', P..'schedules', 0, f.name)
    if f.enabled == '1' and f.paused ~= '1' and f.orphaned ~= '1' and f.next_fire_at then
      redis.call('ZADD', P..'sched_due', f.next_fire_at, f.name)
    end
    written = written + 1
  end
end
if written > 0 then redis.call('INCR', P..'version') end
return written
""",
    # ARGV: count, then per fired slot: schedule, field, record (JSON), fired_at
    "copy_runs": r"""
local written = 0
for i = 3, 2 + 4 * tonumber(ARGV[2]), 4 do
  -- the field a firing on Redis writes for the same slot: it never fires twice
  if redis.call('HSETNX', P..'runs:'..ARGV[i], ARGV[i + 1], ARGV[i + 2]) == 1 then
    redis.call('ZADD', P..'runt:'..ARGV[i], ARGV[i + 3], ARGV[i + 1])
    written = written + 1
  end
end
return written
""",
    # ARGV: the rowid in the file of the last event, count, then per event: fields (JSON
    #       object of strings)
    "copy_events": r"""
local written = 0
read_up_to('events_read', ARGV[2])
for i = 4, 3 + tonumber(ARGV[3]) do
  local f = cjson.decode(ARGV[i])
  local key = P..'event:'..f.id
  if redis.call('EXISTS', key) == 0 and redis.call('SISMEMBER', P..'copied:events', f.id) == 0
  then
    local fields = {}
    for name, value in pairs(f) do fields[#fields + 1] = name; fields[#fields + 1] = value end
    redis.call('HSET', key, unpack(fields))
    redis.call('ZADD', P..'events', f.emitted_at, f.id)
    if f.status == 'pending' then redis.call('ZADD', P..'ev:pending', f.emitted_at, f.id)
    elseif f.status == 'unhandled' then
      redis.call('ZADD', P..'ev:unhandled', f.emitted_at, f.id)
    end
    if f.key then
      local newest = redis.call('HGET', P..'evkey', f.key)
      local then_at = newest and redis.call('HGET', P..'event:'..newest, 'emitted_at')
      if not then_at or tonumber(then_at) < tonumber(f.emitted_at) then
        redis.call('HSET', P..'evkey', f.key, f.id)
      end
    end
    redis.call('SADD', P..'copied:events', f.id)
    written = written + 1
  end
end
return written
""",
    # ARGV: count, then per revocation: key, value, digest
    "copy_revocations": r"""
local written = 0
for i = 3, 2 + 3 * tonumber(ARGV[2]), 3 do
  local mark = 'v:'..ARGV[i]
  if redis.call('HGET', P..'copied', mark) ~= ARGV[i + 2] then
    if redis.call('HSETNX', P..'revoked', ARGV[i], ARGV[i + 1]) == 1 then
      redis.call('HDEL', P..'kvexp', ARGV[i])
      redis.call('HDEL', P..'revat', ARGV[i])
      written = written + 1
    end
    redis.call('HSET', P..'copied', mark, ARGV[i + 2])
  end
end
return written
""",
    # ARGV: count, then per pause: kind<US>name, paused<US>changed_at<US>changed_by
    "copy_pauses": r"""
local written = 0
for i = 3, 2 + 2 * tonumber(ARGV[2]), 2 do
  written = written + redis.call('HSETNX', P..'pauses', ARGV[i], ARGV[i + 1])
end
return written
""",
    # ARGV: count, then per record: id in the file, job id (NULL: none), message bytes,
    #       row (JSON array, no id)
    "copy_logs": r"""
local mark = tonumber(redis.call('HGET', P..'copied', 'log') or '0')
local written = 0
for i = 3, 2 + 4 * tonumber(ARGV[2]), 4 do
  local source = tonumber(ARGV[i])
  if source > mark then
    local id = redis.call('INCR', P..'logseq')
    redis.call('ZADD', P..'logs', id, '[' .. id .. ',' .. string.sub(ARGV[i + 3], 2))
    local job = opt(ARGV[i + 1])
    if job then
      redis.call('ZADD', P..'joblogs:'..job, id, id)
      redis.call('HINCRBY', P..'logbytes', job, ARGV[i + 2])
    end
    mark = source
    written = written + 1
  end
end
redis.call('HSET', P..'copied', 'log', mark)
return written
""",
    # ARGV: key (totals or backpressure), count, then per counter: field, value in the file.
    # Redis gets what the file counted since the last copy: only ever added to, so what
    # Redis's workers count meanwhile stays. Returns 1 when any counter grew.
    "copy_counters": r"""
local key, grew = ARGV[2], 0
for i = 4, 3 + 2 * tonumber(ARGV[3]), 2 do
  local mark = 'c:'..key..US..ARGV[i]
  local before = tonumber(redis.call('HGET', P..'copied', mark) or '0')
  local value = tonumber(ARGV[i + 1])
  if value > before then
    if string.find(ARGV[i + 1], '[.eEn]') then
      redis.call('HINCRBYFLOAT', P..key, ARGV[i], string.format('%.17g', value - before))
    else
      redis.call('HINCRBY', P..key, ARGV[i], value - before)
    end
    redis.call('HSET', P..'copied', mark, ARGV[i + 1])
    grew = 1
  end
end
return grew
""",
}
for _name in ("copy_jobs", "copy_events"):
    BODIES[_name] = _READ_UP_TO + BODIES[_name]
