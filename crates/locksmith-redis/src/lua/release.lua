-- locksmith: release a lock only if this holder still owns it, and wake the waiters.
-- KEYS[1] lock key; KEYS[2] (fair mode only) the waiter queue; ARGV[1] the holder's value
-- prefix ("ls1:<secret>:", the secret is random per grant); ARGV[2] the key's release channel.
-- Fair mode with waiters: the id of the waiter at the head of the queue is published on that
-- waiter's inbox channel (the id is "<inbox>#<random>"), so only it retries. Otherwise an
-- empty message on the key's release channel wakes every waiter.
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local head = KEYS[2] and redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head then
    redis.call('PUBLISH', string.match(head, '^(.+)#[^#]*$') or ARGV[2], head)
  else
    redis.call('PUBLISH', ARGV[2], '')
  end
  return 1
end
return 0
