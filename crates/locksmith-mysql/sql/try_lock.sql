-- One attempt and, only when GET_LOCK grants it, the next fencing token and the holder
-- record, in one statement: no row is inserted when the WHERE is false. The token comes back
-- as the statement's LAST_INSERT_ID. Parameters: name, owner, name.
INSERT INTO locksmith_fencing (name, token, owner, holder_id)
SELECT ?, LAST_INSERT_ID(1), ?, CONNECTION_ID() FROM DUAL WHERE GET_LOCK(?, 0) = 1
ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token + 1),
                        owner = VALUES(owner),
                        holder_id = VALUES(holder_id)
