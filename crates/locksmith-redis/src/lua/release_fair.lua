-- locksmith fair mode: release a lock only if this holder still owns it, and serve the queue
-- (token.lua and fair.lua are prepended).
-- KEYS[1] lock key, KEYS[2] the waiter queue, KEYS[3] the waiters, KEYS[4] the fence counter.
-- ARGV[1] the holder's value prefix ("ls2:<secret>:"); ARGV[2] the key's release channel.
-- With live waiters the lock passes to the waiter at the head of the queue inside this script
-- (release_as and hand_over in fair.lua), which is told on its own inbox; otherwise an empty message on
-- the release channel wakes every waiter.
-- Returns 1 when released, 0 when the key was not (or no longer) this holder's.
return release_as(KEYS[1], KEYS[4], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
