"""Flow control in Lua: pause and resume, cancel requests (see :mod:`runner.store.redis.control`).

``pauses``: ``kind<US>name`` -> ``paused<US>changed_at<US>changed_by`` (NUL: nobody);
``cancels``: job id -> ``attempt<US>requested_by`` for a running attempt someone
asked to stop (dropped when the job leaves ``executing``); ``backpressure``:
``queue<US>rejected|dropped`` -> jobs refused or dropped by full queues; ``flow``: the
turns of queue shares, which upkeep drops for queues left with no job
(``forget_idle_queues``).
"""

from __future__ import annotations

BODIES: dict[str, str] = {
    # ARGV: kind, name, paused (1/0), now, by
    "set_pause": r"""
local field = ARGV[2]..US..ARGV[3]
local old = redis.call('HGET', P..'pauses', field)
redis.call('HSET', P..'pauses', field, ARGV[4]..US..ARGV[5]..US..ARGV[6])
return (not old or string.sub(old, 1, 1) ~= ARGV[4]) and 1 or 0
""",
    # ARGV: kind, now, names...
    "seed_pauses": r"""
for i = 4, #ARGV do
  redis.call('HSETNX', P..'pauses', ARGV[2]..US..ARGV[i], '1'..US..ARGV[3]..US..'settings')
end
return 1
""",
    # ARGV: job_id, by, now
    "request_cancel": r"""
local id, by, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local h = get(id)
if not h then return false end
local state = h.state
if WAITING[state] then
  cancel(h, WAITING, now, 'cancelled by ' .. by)
elseif state == 'executing' then
  redis.call('HSET', P..'cancels', id, h.attempt..US..by)
end
return state
""",
    # ARGV: dry (1/0), queue names...
    # A queue with no waiting job (no ``waitall``) and none running is idle: its turn goes
    # (a queue used again takes its turns from 0, as a new one). Its counts need nothing:
    # ``qstate`` fields go at 0 and sorted sets with their last member.
    "forget_idle_queues": r"""
local n = 0
for i = 3, #ARGV do
  local q = ARGV[i]
  if redis.call('EXISTS', P..'waitall:'..q) == 0
      and not redis.call('HGET', P..'qstate', q..US..'executing') then
    n = n + 1
    if ARGV[2] ~= '1' then redis.call('HDEL', P..'flow', 'turn:'..q) end
  end
end
return n
""",
}
