-- locksmith: acquire one lock and take its fencing token, atomically.
-- KEYS[1] lock key      (holds the holder's value while held; plain SET NX PX semantics)
-- KEYS[2] fence counter (last token handed out for this key; never expires)
-- ARGV[1] value head    ("ls1:<secret>"), ARGV[2] TTL in ms, ARGV[3] value tail ("<since_ms>:<owner>")
-- Returns {1, token} when granted, {0, pttl} when the key is held (pttl -1: no expiry).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local token = redis.call('INCR', KEYS[2])
if token == 1 then
  -- A new (or lost: restarted empty, evicted, flushed) counter starts at the server's clock in
  -- microseconds, above every token handed out before, since grants take more than a microsecond.
  local now = redis.call('TIME')
  local seed = now[1] .. string.format('%06d', tonumber(now[2]))
  redis.call('SET', KEYS[2], seed)
  token = tonumber(seed)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', token) .. ':' .. ARGV[3], 'PX', ARGV[2])
return {1, token}
