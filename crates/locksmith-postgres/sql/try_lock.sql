-- One attempt and, only when it succeeds, the next fencing token: CASE evaluates THEN only
-- after its WHEN is true. $1: the advisory id (bigint). $2: the owner label.
SELECT CASE WHEN pg_try_advisory_lock($1::bigint)
            THEN nextval('locksmith_fencing_token')
       END AS token,
       set_config('application_name', $2::text, false) AS owner
