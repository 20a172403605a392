-- locksmith: who holds a key, read in one step: its value, its PTTL and its fence counter (the
-- holder's token, for a value locksmith wrote: only grants move the counter).
-- KEYS[1] lock key; KEYS[2] fence counter.
-- Returns {value or nil, PTTL, counter or nil}.
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2])}
