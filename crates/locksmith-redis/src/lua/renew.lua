-- locksmith: extend a lease only if this holder still owns it.
-- KEYS[1] lock key; ARGV[1] the holder's value prefix ("ls1:<secret>:"); ARGV[2] the TTL in ms.
-- Returns 1 when extended, 0 when the key was not (or no longer) this holder's.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
