-- locksmith: release a lock only if this holder still owns it, and wake the waiters.
-- KEYS[1] lock key; ARGV[1] the holder's full value; ARGV[2] the key's release channel.
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
return 0
