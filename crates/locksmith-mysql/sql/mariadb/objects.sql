-- Which of locksmith's MariaDB objects exist in the URL's database: the token sequence, the
-- owners table, and the counter table of earlier versions (whose tokens the sequence starts
-- above).
SELECT DATABASE() AS db,
       COALESCE(SUM(TABLE_NAME = 'locksmith_fencing_seq'), 0) AS seq,
       COALESCE(SUM(TABLE_NAME = 'locksmith_owners'), 0) AS owners,
       COALESCE(SUM(TABLE_NAME = 'locksmith_fencing'), 0) AS old_counter
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE()
  AND TABLE_NAME IN ('locksmith_fencing_seq', 'locksmith_owners', 'locksmith_fencing')
