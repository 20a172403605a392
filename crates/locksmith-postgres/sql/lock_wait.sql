-- Blocks in the server's lock queue until granted, then takes the next fencing token.
-- OFFSET 0 keeps the subquery (and so the lock) evaluated before the outer select list.
-- $1: the advisory id (bigint). $2: the owner label.
SELECT nextval('locksmith_fencing_token') AS token,
       set_config('application_name', $2::text, false) AS owner
FROM (SELECT pg_advisory_lock($1::bigint) OFFSET 0) AS granted
