-- Blocks in the server's queue for up to the given number of seconds and, only when GET_LOCK
-- grants it, takes the next fencing token; NULL when the wait timed out or failed. The
-- statement opens no table but the sequence, whose NEXTVAL takes no table lock, so a blocked
-- wait holds up nobody else. Parameters: name, seconds.
SELECT CASE WHEN GET_LOCK(?, ?) = 1 THEN NEXTVAL(locksmith_fencing_seq) END AS token
