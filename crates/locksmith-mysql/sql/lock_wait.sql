-- Blocks in the server's queue for up to the given number of seconds: 1 granted, 0 timed out,
-- NULL on error. Parameters: name, seconds.
SELECT GET_LOCK(?, ?)
