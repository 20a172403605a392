-- The largest token the per-name counter table of earlier versions handed out.
SELECT CAST(COALESCE(MAX(token), 0) AS UNSIGNED) FROM locksmith_fencing
