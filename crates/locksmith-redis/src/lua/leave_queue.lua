-- locksmith fair mode: a waiter that gives up leaves the queue (token.lua and fair.lua are
-- prepended). If the lock is free, the new head is served; if a release had already handed
-- the lock to this waiter, it is released and handed on.
-- KEYS[1] waiter queue; KEYS[2] waiters; KEYS[3] lock key; KEYS[4] fence counter.
-- ARGV[1] waiter id; ARGV[2] release channel; ARGV[3] the waiter's value prefix ("ls2:<secret>:").
-- Returns 1 when it released a lock handed to the waiter, else 0.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  if redis.call('EXISTS', KEYS[3]) == 0 then
    hand_over(KEYS[3], KEYS[4], KEYS[1], KEYS[2], now_ms(), ARGV[2])
  end
  return 0
end
return release_as(KEYS[3], KEYS[4], KEYS[1], KEYS[2], ARGV[3], ARGV[2])
