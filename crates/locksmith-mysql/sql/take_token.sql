-- After a granted wait: the next fencing token (as LAST_INSERT_ID) and the holder record.
-- Parameters: name, owner.
INSERT INTO locksmith_fencing (name, token, owner, holder_id)
VALUES (?, LAST_INSERT_ID(1), ?, CONNECTION_ID())
ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token + 1),
                        owner = VALUES(owner),
                        holder_id = VALUES(holder_id)
