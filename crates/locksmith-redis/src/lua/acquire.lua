-- locksmith: acquire one lock and take its fencing token, atomically (token.lua is prepended).
-- KEYS[1] lock key      (holds the holder's value while held; plain SET NX PX semantics)
-- KEYS[2] fence counter (last token handed out for this key; never expires)
-- ARGV[1] value head    ("ls1:<secret>"), ARGV[2] TTL in ms, ARGV[3] value tail ("<since_ms>:<owner>")
-- Returns one integer (a table reply costs the server more): the token (>= 1) when granted,
-- else -2 - PTTL (<= 0; PTTL -1: no expiry). See Acquired in layout.rs.
-- The token is taken before the SET NX, so an attempt that finds the key held uses one up:
-- tokens only ever grow, and one command less runs on the common path (a free key).
local token = next_token(KEYS[2])
if redis.call('SET', KEYS[1], lock_value(ARGV[1], token, ARGV[3]), 'NX', 'PX', ARGV[2]) then
  return token
end
return -2 - redis.call('PTTL', KEYS[1])
