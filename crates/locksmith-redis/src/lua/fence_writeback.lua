-- locksmith (Redlock): raise this node's fence counter to the grant's token, and put the token
-- into this node's copy of the lock value (so that every node of the majority shows it), only
-- while this holder still holds the key on this node.
-- KEYS[1] lock key; KEYS[2] fence counter; ARGV[1] the holder's value prefix
-- ("ls1:<secret>:"); ARGV[2] the token.
-- Returns 1 when the counter is now at least the token, 0 when the key is not this holder's.
local value = redis.call('GET', KEYS[1])
local n = string.len(ARGV[1])
if not value or string.sub(value, 1, n) ~= ARGV[1] then
  return 0
end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
-- The value is "<prefix><node token>:<since>:<owner>": replace the node's token.
local rest = string.sub(value, n + 1)
local colon = string.find(rest, ':', 1, true)
if colon then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2] .. string.sub(rest, colon), 'KEEPTTL')
end
return 1
