-- lock_wait.sql for a connection whose application_name already is the owner label.
-- $1: the advisory id (bigint).
SELECT nextval('locksmith_fencing_token') AS token
FROM (SELECT pg_advisory_lock($1::bigint) OFFSET 0) AS granted
