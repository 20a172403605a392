-- 1 released, 0 held by another session, NULL not held at all. Parameter: name.
SELECT RELEASE_LOCK(?)
