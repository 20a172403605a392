-- One attempt and, only when GET_LOCK grants it, the next fencing token from the sequence
-- (CASE evaluates THEN only after its WHEN is true); NULL when busy. No table is written, so
-- nothing is committed. Parameter: name.
SELECT CASE WHEN GET_LOCK(?, 0) = 1 THEN NEXTVAL(locksmith_fencing_seq) END AS token
