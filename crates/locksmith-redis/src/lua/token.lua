-- locksmith: the fencing token of a grant, shared by the scripts that grant (prepended to each).
-- INCR of the key's fence counter; a new (or lost: restarted empty, evicted, flushed) counter
-- starts at the server's clock in microseconds, above every token handed out before, since
-- grants take more than a microsecond.
local function next_token(fence)
  local token = redis.call('INCR', fence)
  if token == 1 then
    local now = redis.call('TIME')
    local seed = now[1] .. string.format('%06d', tonumber(now[2]))
    redis.call('SET', fence, seed)
    token = tonumber(seed)
  end
  return token
end
