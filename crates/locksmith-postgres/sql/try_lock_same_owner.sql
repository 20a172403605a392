-- try_lock.sql for a connection whose application_name already is the owner label.
SELECT CASE WHEN pg_try_advisory_lock($1::bigint)
            THEN nextval('locksmith_fencing_token')
       END AS token
