-- locksmith fair mode: acquire in first-come-first-served order, skipping dead waiters
-- (token.lua and fair.lua are prepended).
-- KEYS[1] lock key; KEYS[2] fence counter; KEYS[3] waiter queue; KEYS[4] waiters (see fair.lua).
-- ARGV[1] value head ("ls2:<secret>", the same for every attempt of one waiting acquire);
-- ARGV[2] TTL ms; ARGV[3] value tail ("<since_ms>:<owner>"); ARGV[4] waiter id (random per
-- acquire call); ARGV[5] waiter liveness bound ms; ARGV[6] '1' to join the queue when not
-- granted, '0' for a single try; ARGV[7] this attempt's number (joining waiters).
-- Returns one integer: the token (>= 1) when granted, else -2 - PTTL (<= 0; PTTL -1: no
-- expiry, -2: free). See Acquired in layout.rs.
local now = now_ms()
local value = redis.call('GET', KEYS[1])
if value and ARGV[6] == '1' then
  local mine = ARGV[1] .. ':'
  if string.sub(value, 1, string.len(mine)) == mine then
    -- A release handed the lock to this waiter while this attempt was on its way (or its
    -- inbox message was lost): it is granted, its TTL counted from this attempt.
    -- Its token is the counter's: only grants move it.
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(redis.call('GET', KEYS[2]))
  end
end

local head = live_head(KEYS[3], KEYS[4], now)
if not value then
  if not head or head == ARGV[4] then
    if head then
      redis.call('ZREM', KEYS[3], head)
      redis.call('HDEL', KEYS[4], head)
    end
    local token = next_token(KEYS[2])
    redis.call('SET', KEYS[1], lock_value(ARGV[1], ARGV[3]), 'PX', ARGV[2])
    return token
  end
  -- Free, yet others wait first (a holder whose lease ran out sends no release): serve the head.
  hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, nil)
end

if ARGV[6] == '1' then
  if not redis.call('ZSCORE', KEYS[3], ARGV[4]) then
    local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2]
    redis.call('ZADD', KEYS[3], tonumber(last or '0') + 1, ARGV[4])
  end
  local bound = tonumber(ARGV[5])
  redis.call('HSET', KEYS[4], ARGV[4],
    string.format('%d', now + bound) .. '\n' .. ARGV[7] .. '\n' .. ARGV[2] .. '\n' .. ARGV[1] .. '\n' .. ARGV[3])
  -- A queue whose waiters all vanished goes away by itself.
  redis.call('PEXPIRE', KEYS[3], bound * 2)
  redis.call('PEXPIRE', KEYS[4], bound * 2)
end
return -2 - redis.call('PTTL', KEYS[1])
