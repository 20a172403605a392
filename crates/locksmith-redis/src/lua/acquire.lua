-- locksmith: acquire one lock and, only when granted, take its fencing token, atomically
-- (token.lua is prepended).
-- KEYS[1] lock key      (holds the holder's value while held; plain SET NX PX semantics)
-- KEYS[2] fence counter (the last token handed out for this key: while the key is held, its
--                        holder's; never expires)
-- ARGV[1] the holder's value ("ls2:<secret>:<since_ms>:<owner>"), ARGV[2] TTL in ms
-- Returns one integer (a table reply costs the server more): the token (>= 1) when granted,
-- else -2 - PTTL (<= 0; PTTL -1: no expiry). See Acquired in layout.rs.
-- The value is stored as sent (building it here cost the server more than the rest of the
-- script), and an attempt that finds the key held changes nothing.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return next_token(KEYS[2])
end
return -2 - redis.call('PTTL', KEYS[1])
