-- The holder's connection id, and its owner label and token when a locksmith grant on that
-- connection recorded them. Parameters: name, name.
SELECT h.id, f.owner, f.token
FROM (SELECT IS_USED_LOCK(?) AS id) AS h
LEFT JOIN locksmith_fencing AS f ON f.name = ? AND f.holder_id = h.id
