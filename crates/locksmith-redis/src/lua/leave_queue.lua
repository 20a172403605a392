-- locksmith fair mode: a waiter that gives up leaves the queue, and wakes the others in case it
-- was at the head while the lock was free.
-- KEYS[1] waiter queue; KEYS[2] waiter deadlines; ARGV[1] waiter id; ARGV[2] release channel.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('PUBLISH', ARGV[2], '')
end
return 0
