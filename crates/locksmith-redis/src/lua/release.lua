-- locksmith: release a lock only if this holder still owns it, and wake the waiters.
-- KEYS[1] lock key. ARGV[1] the holder's value prefix ("ls2:<secret>:", the secret is random
-- per grant); ARGV[2] the key's release channel, on which an empty message wakes every waiter.
-- (Fair mode releases with release_fair.lua.)
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
return 0
