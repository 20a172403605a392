SELECT to_regclass('locksmith_fencing_token') IS NOT NULL AS present
