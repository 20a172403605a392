-- locksmith fair mode: acquire in first-come-first-served order, skipping dead waiters.
-- KEYS[1] lock key; KEYS[2] fence counter; KEYS[3] waiter queue (sorted set: waiter id, score
-- = arrival number); KEYS[4] waiter deadlines (hash: waiter id -> server ms until which the
-- waiter counts as alive; each retry moves it).
-- ARGV[1] value head ("ls1:<secret>"); ARGV[2] TTL ms; ARGV[3] value tail ("<since_ms>:<owner>");
-- ARGV[4] waiter id (random per acquire call); ARGV[5] waiter liveness bound ms;
-- ARGV[6] '1' to join the queue when not granted, '0' for a single try.
-- Returns {1, token} when granted, {0, pttl} when not (pttl -1: free or no expiry).
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)

-- Skip waiters at the head that stopped retrying (crashed, cancelled without cleanup).
local head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
local skipped = false
while head do
  local alive = tonumber(redis.call('HGET', KEYS[4], head) or '0')
  if alive >= now_ms then break end
  redis.call('ZREM', KEYS[3], head)
  redis.call('HDEL', KEYS[4], head)
  skipped = true
  head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
end

local free = redis.call('EXISTS', KEYS[1]) == 0
if free and skipped and head and head ~= ARGV[4] then
  -- The lock is free and the new head may not know it is first: wake it (see release.lua).
  local inbox = string.match(head, '^(.+)#[^#]*$')
  if inbox then redis.call('PUBLISH', inbox, head) end
end

if free and (not head or head == ARGV[4]) then
  if head then
    redis.call('ZREM', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
  end
  local token = redis.call('INCR', KEYS[2])
  if token == 1 then
    local seed = now[1] .. string.format('%06d', tonumber(now[2]))
    redis.call('SET', KEYS[2], seed)
    token = tonumber(seed)
  end
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', token) .. ':' .. ARGV[3], 'PX', ARGV[2])
  return {1, token}
end

if ARGV[6] == '1' then
  if not redis.call('ZSCORE', KEYS[3], ARGV[4]) then
    local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2]
    redis.call('ZADD', KEYS[3], tonumber(last or '0') + 1, ARGV[4])
  end
  local bound = tonumber(ARGV[5])
  redis.call('HSET', KEYS[4], ARGV[4], now_ms + bound)
  -- A queue whose waiters all vanished goes away by itself.
  redis.call('PEXPIRE', KEYS[3], bound * 2)
  redis.call('PEXPIRE', KEYS[4], bound * 2)
end
return {0, redis.call('PTTL', KEYS[1])}
