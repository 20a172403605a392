-- $1: the advisory id (bigint). False (and a server warning) when this session did not hold it.
SELECT pg_advisory_unlock($1::bigint) AS released
