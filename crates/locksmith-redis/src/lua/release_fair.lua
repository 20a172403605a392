-- locksmith fair mode: release a lock only if this holder still owns it, and serve the queue
-- (token.lua and fair.lua are prepended).
-- KEYS[1] lock key, KEYS[2] the waiter queue, KEYS[3] the waiters, KEYS[4] the fence counter.
-- ARGV[1] the holder's value prefix ("ls1:<secret>:"); ARGV[2] the key's release channel.
-- With live waiters the lock passes to the waiter at the head of the queue inside this script
-- (see hand_over in fair.lua), which is told on its own inbox; otherwise an empty message on
-- the release channel wakes every waiter.
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if not hand_over(KEYS[1], KEYS[4], KEYS[2], KEYS[3], now_ms(), ARGV[2]) then
    redis.call('PUBLISH', ARGV[2], '')
  end
  return 1
end
return 0
