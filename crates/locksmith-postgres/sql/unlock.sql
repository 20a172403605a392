-- $1: the advisory id (bigint). One row when this session held the lock and released it;
-- none (and a server warning) when it did not hold it. Run with `execute`, which counts the
-- rows without building them.
SELECT 1 WHERE pg_advisory_unlock($1::bigint)
