-- locksmith: release a lock only if this holder still owns it, and wake the waiters.
-- KEYS[1] lock key; KEYS[2] (fair mode only) the waiter queue; ARGV[1] the holder's value
-- prefix ("ls1:<secret>:", the secret is random per grant); ARGV[2] the key's release channel.
-- The message is the id of the waiter at the head of the queue (fair mode), so that only it
-- retries, or empty (wake every waiter).
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local next = ''
  if KEYS[2] then
    next = redis.call('ZRANGE', KEYS[2], 0, 0)[1] or ''
  end
  redis.call('PUBLISH', ARGV[2], next)
  return 1
end
return 0
