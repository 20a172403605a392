-- locksmith (Redlock): raise this node's fence counter to the grant's token, only while this
-- holder still holds the key on this node (the counter is then the holder's token there, as on
-- every node that granted it with that token).
-- KEYS[1] lock key; KEYS[2] fence counter; ARGV[1] the holder's value prefix
-- ("ls2:<secret>:"); ARGV[2] the token.
-- Returns 1 when the counter is now at least the token, 0 when the key is not this holder's.
local value = redis.call('GET', KEYS[1])
if not value or string.sub(value, 1, string.len(ARGV[1])) ~= ARGV[1] then
  return 0
end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
