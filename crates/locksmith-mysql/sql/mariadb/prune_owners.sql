-- Forgets the owner records of this account's connections that are gone (an account sees
-- all of its own connections in the process list), so that the MEMORY table stays as small
-- as the set of live connections. Run once per new connection.
DELETE FROM locksmith_owners
WHERE account = CURRENT_USER()
  AND holder_id NOT IN (SELECT ID FROM information_schema.PROCESSLIST)
