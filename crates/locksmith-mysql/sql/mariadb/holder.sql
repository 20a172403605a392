-- The holder's connection id, and its owner label when that connection recorded one.
-- Parameter: name.
SELECT h.id, o.owner
FROM (SELECT IS_USED_LOCK(?) AS id) AS h
LEFT JOIN locksmith_owners AS o ON o.holder_id = h.id
