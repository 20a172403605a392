-- Blocks in the server's queue for up to the given number of seconds and, only when GET_LOCK
-- grants it, takes the next fencing token and records the holder, in one statement (as
-- try_lock.sql): no row is written when the wait times out. The token comes back as the
-- statement's LAST_INSERT_ID. Parameters: name, owner, name, seconds.
INSERT INTO locksmith_fencing (name, token, owner, holder_id)
SELECT ?, LAST_INSERT_ID(1), ?, CONNECTION_ID() FROM DUAL WHERE GET_LOCK(?, ?) = 1
ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token + 1),
                        owner = VALUES(owner),
                        holder_id = VALUES(holder_id)
