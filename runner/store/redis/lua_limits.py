"""The claim under flow control, in Lua: aging, queue shares, concurrency and rate limits.

Runs inside the claim function, so every worker on every host reads and
spends the same counts and buckets (the arithmetic is :mod:`runner.flow`'s,
written again in Lua):

* concurrency: ``run`` counts the ``executing`` jobs per ``t<US>task`` and
  ``k<US>task<US>key`` (kept by ``restate``), per queue the ``qstate`` count;
* rates: token buckets in ``flow`` (``rate:<kind>:<name>`` -> ``tokens<US>updated_at``),
  refilled and spent here; shares: each queue's smooth round-robin counter in
  ``flow`` (``turn:<queue>``);
* order: per queue a cursor over its ready set (with aging, one per level of
  priority, each knowing its oldest job), read on in chunks past held-back jobs;
  the cursors' heads are merged by effective priority, then oldest due.

A held-back job stays waiting with no attempt spent. One held by its task (paused,
at its concurrency, out of tokens) or by its concurrency key is parked apart
(``park:<group>``, see ``park`` in :mod:`runner.store.redis.lua_jobs`), so later
claims do not read it again, and the best of its group come back when a claim finds
the limit free. A cursor reads at most :data:`~runner.store.redis.lua_jobs.SCAN`
jobs a claim, so a held-back backlog costs a bounded amount; a claim that stopped
there says to look again at once (``next_due`` now), and the next one reads on past
the jobs just parked.
"""

from __future__ import annotations

CHOOSER = r"""
local ROUNDING = 1e-6

local function has_token(tokens, per_second) return tokens >= 1 - per_second * ROUNDING end

local function next_token_at(tokens, now, rate, need)
  need = math.max(1, math.min(need, rate[2]))
  if has_token(tokens - need + 1, rate[1]) then return now end
  return now + (need - tokens) / rate[1]
end

local function budget_of(limits, queues, now)
  local b = {limits=limits, rq={}, rt={}, rk={}, tokens={}, rates={}, spent={}, info={}}
  for q, _ in pairs(limits.qc) do
    b.rq[q] = tonumber(redis.call('HGET', P..'qstate', q..US..'executing') or 0)
  end
  for t, _ in pairs(limits.tc) do
    b.rt[t] = tonumber(redis.call('HGET', P..'run', 't'..US..t) or 0)
  end
  local waiting = {}
  for _, q in ipairs(queues) do waiting[q] = true end
  local names = {}
  for q, r in pairs(limits.qr) do if waiting[q] then names['rate:queue:'..q] = r end end
  for t, r in pairs(limits.tr) do names['rate:task:'..t] = r end
  for name, rate in pairs(names) do
    local stored = redis.call('HGET', P..'flow', name)
    local tokens = rate[2]
    if stored then
      local sep = string.find(stored, US, 1, true)
      local level = tonumber(string.sub(stored, 1, sep - 1))
      local at = tonumber(string.sub(stored, sep + 1))
      tokens = math.min(rate[2], level + math.max(0, now - at) * rate[1])
    end
    b.tokens[name], b.rates[name] = tokens, rate
  end
  return b
end

local function running_key(b, task, key)
  local field = task..US..key
  if b.rk[field] == nil then
    b.rk[field] = tonumber(redis.call('HGET', P..'run', 'k'..US..field) or 0)
  end
  return b.rk[field]
end

local function queue_open(b, q)
  local cap = b.limits.qc[q]
  if cap and cap > 0 and b.rq[q] >= cap then return false end
  local name = 'rate:queue:'..q
  return not b.rates[name] or has_token(b.tokens[name], b.rates[name][1])
end

local function task_open(b, t)
  local cap = b.limits.tc[t]
  if cap and cap > 0 and (b.rt[t] or 0) >= cap then return false end
  local name = 'rate:task:'..t
  return not b.rates[name] or has_token(b.tokens[name], b.rates[name][1])
end

local function key_open(b, task, key)
  local cap = b.limits.kc[task]
  return not (cap and cap > 0 and key and running_key(b, task, key) >= cap)
end

-- What holds a candidate back: nil (nothing), 'q' (its queue), 't' (its task), 'k' (its key).
local function hold_of(b, c, paused_tasks)
  if not queue_open(b, c.q) then return 'q' end
  if paused_tasks[c.task] or not task_open(b, c.task) then return 't' end
  if not key_open(b, c.task, c.key) then return 'k' end
  return nil
end

-- Whether a parked group may run now (see ``unpark``).
local function group_free(b, paused_tasks)
  return function(kind, task, key)
    if paused_tasks[task] or not task_open(b, task) then return false end
    return kind ~= 'k' or key_open(b, task, key)
  end
end

local function take(b, c)
  if b.rq[c.q] then b.rq[c.q] = b.rq[c.q] + 1 end
  b.rt[c.task] = (b.rt[c.task] or 0) + 1
  if c.key and b.limits.kc[c.task] then
    running_key(b, c.task, c.key)
    b.rk[c.task..US..c.key] = b.rk[c.task..US..c.key] + 1
  end
  for _, name in ipairs({'rate:queue:'..c.q, 'rate:task:'..c.task}) do
    if b.tokens[name] then b.tokens[name] = b.tokens[name] - 1; b.spent[name] = true end
  end
end

local function better(a, b)
  if a.o ~= b.o then return a.o < b.o end
  return a.m < b.m
end

-- The order of a ready member (``o`` and ``m`` as :func:`better` compares them).
local function order_of(m, score, now, aging)
  local run_at = tonumber(string.sub(m, 1, 20))
  local priority = -tonumber(score)
  if aging > 0 and now > run_at then
    priority = priority + math.floor((now - run_at) / aging)
  end
  return {o=-priority, m=m}
end

-- Cursors over one queue's ready (or suspect) set: one, or one per level with aging,
-- each with ``best``, the order of its oldest job (none of its jobs comes before it).
-- Every level is found (one read each): a level below the busiest ones may hold a job
-- that waited long enough to beat them all.
local function cursors_of(src, q, aging, now)
  local key = P..src..q
  if aging <= 0 then
    return {{q=q, src=src, key=key, lo='-inf', hi='+inf', pos=0, buf={}, bi=1}}
  end
  local out = {}
  local lo = '-inf'
  while true do
    local first = redis.call('ZRANGEBYSCORE', key, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #first == 0 then break end
    out[#out + 1] = {q=q, src=src, key=key, lo=first[2], hi=first[2], pos=0, buf={}, bi=1,
                     best=order_of(first[1], first[2], now, aging)}
    lo = '(' .. first[2]
  end
  table.sort(out, function(a, b) return better(a.best, b.best) end)
  return out
end

-- The cursor's next job the budget allows, or nil; held ones are skipped for good
-- (parked when their task or key holds them).
local function head(c, b, paused_tasks, now, aging, taken, want)
  while true do
    if c.bi > #c.buf then
      if c.done then return nil end
      if (c.read or 0) >= SCAN then
        b.more = b.more or c.src == 'ready:'  -- what it read is parked: read on next time
        return nil
      end
      -- a claim of a few jobs reads a few; each further read of the cursor reads twice as many
      c.chunk = c.chunk and math.min(2 * c.chunk, 1000) or want + 4
      local rows = redis.call('ZRANGEBYSCORE', c.key, c.lo, c.hi, 'WITHSCORES',
                              'LIMIT', c.pos, c.chunk)
      c.pos, c.buf, c.bi = c.pos + #rows / 2, {}, 1
      c.read = (c.read or 0) + #rows / 2
      if #rows < 2 * c.chunk then c.done = true end
      for i = 1, #rows, 2 do
        local m = rows[i]
        local id = string.sub(m, 35)
        local v = b.by_task and redis.call('HMGET', P..'job:'..id, 'task', 'concurrency_key')
                  or {}
        c.buf[#c.buf + 1] = {q=c.q, m=m, s=tonumber(rows[i + 1]), id=id, task=v[1] or '',
                             key=v[2] or nil, o=order_of(m, rows[i + 1], now, aging).o,
                             raw=rows[i + 1]}
      end
      if #c.buf == 0 then return nil end
    end
    local cand = c.buf[c.bi]
    if not taken[cand.id] then
      local hold = hold_of(b, cand, paused_tasks)
      if not hold then return cand end
      if hold == 'q' then  -- the queue is closed for the rest of this claim
        c.done, c.buf = true, {}
        return nil
      end
      -- crashed jobs (claimed alone, seldom many) are left where they are
      if c.src == 'ready:' then
        park(c.src, c.q, park_group(c.src, c.q, cand.task, hold == 'k' and cand.key or nil),
             cand.m, cand.raw)
        c.pos = c.pos - 1  -- the rows after it moved up one place
      end
    end
    c.bi = c.bi + 1
  end
end

-- The best allowed head among some cursors (and its cursor), or nil. Levels come best
-- first: once one's oldest job cannot beat the best head found, no later one can.
local function best_of(cursors, b, paused_tasks, now, aging, taken, want)
  local best, at = nil, nil
  for _, c in ipairs(cursors) do
    if best and c.best and not better(c.best, best) then break end
    local h = head(c, b, paused_tasks, now, aging, taken, want)
    if h and (not best or better(h, best)) then best, at = h, c end
  end
  return best, at
end

-- Smooth weighted round robin (runner.flow.weighted_next and weighted_step).
local function weight(limits, q) return limits.weights[q] or 1 end

local function weighted_next(counters, limits, eligible)
  local chosen, top = nil, nil
  for _, q in ipairs(eligible) do
    local v = (counters[q] or 0) + weight(limits, q)
    if not chosen or v > top or (v == top and q < chosen) then chosen, top = q, v end
  end
  return chosen
end

local function weighted_step(counters, limits, eligible)
  local chosen = weighted_next(counters, limits, eligible)
  local total = 0
  for _, q in ipairs(eligible) do
    counters[q] = (counters[q] or 0) + weight(limits, q)
    total = total + weight(limits, q)
  end
  counters[chosen] = counters[chosen] - total
  return chosen
end

local function full_labels(b)
  local out = {}
  for q, cap in pairs(b.limits.qc) do
    if cap > 0 and (b.rq[q] or 0) >= cap then out[#out + 1] = 'queue:'..q end
  end
  for t, cap in pairs(b.limits.tc) do
    if cap > 0 and (b.rt[t] or 0) >= cap then out[#out + 1] = 'task:'..t end
  end
  for field, n in pairs(b.rk) do
    local task = string.sub(field, 1, string.find(field, US, 1, true) - 1)
    local cap = b.limits.kc[task] or 0
    if cap > 0 and n >= cap then out[#out + 1] = 'task:'..task end
  end
  return out
end

-- Up to ``n`` candidates of ``queues`` the limits let start now, best first; the
-- earliest next token of a bucket that holds jobs back; the limits at their cap.
local function choose_limited(src, queues, n, now, limits, paused_tasks)
  local aging = tonumber(limits.aging) or 0
  local b = budget_of(limits, queues, now)
  -- the task and key of each candidate are read only when a limit or a pause needs them
  b.by_task = next(limits.tc) or next(limits.kc) or next(limits.tr) or next(paused_tasks)
  unpark(src, queues, n, group_free(b, paused_tasks))
  local sorted = {}
  for _, q in ipairs(queues) do sorted[#sorted + 1] = q end
  table.sort(sorted)
  local open = {}
  for _, q in ipairs(sorted) do if queue_open(b, q) then open[#open + 1] = q end end
  local picked, taken = {}, {}
  local has_weights = next(limits.weights) ~= nil
  if has_weights then
    local counters, read, cursors, ready = {}, {}, {}, {}
    for _, q in ipairs(open) do
      local stored = redis.call('HGET', P..'flow', 'turn:'..q)
      counters[q] = 0
      if stored then
        counters[q] = tonumber(string.sub(stored, 1, string.find(stored, US, 1, true) - 1))
      end
      read[q] = counters[q]
      cursors[q] = cursors_of(src, q, aging, now)
      -- A queue with no job due (only jobs due later) takes no turn and keeps its
      -- counter (runner.flow.weighted_pick): its weight in every other pick's total
      -- would hand its turns round to the others, and the credit it gathered would let
      -- it take more than its share once its jobs come due. (Jobs held back by their
      -- task or key leave the ready set as the first claim that reads them parks them.)
      if redis.call('ZCARD', P..src..q) > 0 then ready[#ready + 1] = q end
    end
    while #picked < n and #ready > 0 do
      local q = weighted_next(counters, limits, ready)
      local c = best_of(cursors[q], b, paused_tasks, now, aging, taken, n)
      if not c then
        for i, name in ipairs(ready) do if name == q then table.remove(ready, i); break end end
      else
        weighted_step(counters, limits, ready)
        take(b, c); taken[c.id] = true
        picked[#picked + 1] = c
      end
    end
    if #picked > 0 then
      -- only the turns taken: a queue with nothing due keeps its counter unwritten
      for q, v in pairs(counters) do
        if v ~= read[q] then redis.call('HSET', P..'flow', 'turn:'..q, exact(v)..US..exact(now)) end
      end
    end
  else
    local cursors = {}
    for _, q in ipairs(open) do
      for _, c in ipairs(cursors_of(src, q, aging, now)) do cursors[#cursors + 1] = c end
    end
    if aging > 0 then table.sort(cursors, function(x, y) return better(x.best, y.best) end) end
    while #picked < n do
      local c = best_of(cursors, b, paused_tasks, now, aging, taken, n)
      if not c then break end
      take(b, c); taken[c.id] = true
      picked[#picked + 1] = c
    end
  end
  for name, _ in pairs(b.spent) do
    redis.call('HSET', P..'flow', name, exact(b.tokens[name])..US..exact(now))
  end
  local token_due = nil
  if #picked == 0 then
    for name, tokens in pairs(b.tokens) do
      local rate = b.rates[name]
      if not has_token(tokens, rate[1]) then
        local at = next_token_at(tokens, now, rate, n)
        if not token_due or at < token_due then token_due = at end
      end
    end
  end
  return picked, token_due, full_labels(b), b.more
end
"""
