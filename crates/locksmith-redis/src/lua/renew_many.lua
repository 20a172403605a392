-- locksmith: extend many leases at once, each only if its holder still owns it.
-- KEYS[i] a lock key; ARGV[2i-1] its holder's value prefix ("ls2:<secret>:"); ARGV[2i] its TTL
-- in ms. Every key of one call is in one Redis Cluster hash slot (the client groups them).
-- Returns one 1 (extended) or 0 (not, or no longer, this holder's) per key, in KEYS order.
local out = {}
for i, key in ipairs(KEYS) do
  local prefix = ARGV[2 * i - 1]
  local value = redis.call('GET', key)
  if value and string.sub(value, 1, string.len(prefix)) == prefix then
    redis.call('PEXPIRE', key, ARGV[2 * i])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
