-- Who holds a session-level bigint advisory lock in this database. A bigint id is stored as
-- classid = high 32 bits, objid = low 32 bits, objsubid = 1 (objsubid = 2 is the two-int4 form).
-- $1: classid (oid). $2: objid (oid).
SELECT l.pid AS pid, a.application_name AS owner
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = $1::oid
  AND l.objid = $2::oid
  AND l.objsubid = 1
  AND l.granted
LIMIT 1
