-- locksmith bench's floor: the bare compare-and-delete any SET-NX lock needs to release safely.
-- KEYS[1] lock key; ARGV[1] the value it was set to. Returns 1 when deleted, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
