-- Records the owner label of this connection's locks, for holder(); written before the lock
-- attempt, and only when the connection's label changes. Parameter: owner.
INSERT INTO locksmith_owners (holder_id, owner, account)
VALUES (CONNECTION_ID(), ?, CURRENT_USER())
ON DUPLICATE KEY UPDATE owner = VALUES(owner), account = VALUES(account)
