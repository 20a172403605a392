-- locksmith fair mode: a waiter that gives up leaves the queue, and wakes the waiter now at the
-- head (on its inbox, see release.lua) in case the lock is free and it was waiting behind.
-- KEYS[1] waiter queue; KEYS[2] waiter deadlines; ARGV[1] waiter id; ARGV[2] release channel.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if head then
    redis.call('PUBLISH', string.match(head, '^(.+)#[^#]*$') or ARGV[2], head)
  end
end
return 0
