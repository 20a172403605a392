-- locksmith fair mode: the queue, shared by the fair scripts (prepended after token.lua).
-- queue: sorted set of waiter ids by arrival. waiters: hash, waiter id ->
-- "<alive until, server ms>\n<attempt seq>\n<ttl ms>\n<value head>\n<since ms>:<owner>"
-- (only the first field for a waiter that leaves no grant request). A waiter id is
-- "<its backend's inbox channel>#<random>".

-- A holder's value: "<value head>:<since ms>:<owner>" (see layout.rs). The token is not in it:
-- only grants take one, so the fence counter is the holder's token while the key is held.
local function lock_value(head, tail)
  return head .. ':' .. tail
end

-- The server's clock in ms.
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

local function inbox_of(id, fallback)
  return string.match(id, '^(.+)#[^#]*$') or fallback
end

local function tell(id, fallback, message)
  local inbox = inbox_of(id, fallback)
  if inbox then redis.call('PUBLISH', inbox, message) end
end

local function alive_until(entry)
  return tonumber(string.match(entry or '', '^(%d+)') or '0')
end

-- Drops waiters at the head whose liveness bound passed; returns the live head, if any.
local function live_head(queue, waiters, now)
  local head = redis.call('ZRANGE', queue, 0, 0)[1]
  while head do
    if alive_until(redis.call('HGET', waiters, head)) >= now then return head end
    redis.call('ZREM', queue, head)
    redis.call('HDEL', waiters, head)
    head = redis.call('ZRANGE', queue, 0, 0)[1]
  end
  return nil
end

-- The lock is free: hands it to the live waiter at the head of the queue, inside the server,
-- and tells that waiter on its inbox ("<id> <token> <seq>": granted with this token, its lease
-- counted from when it sent attempt <seq>). A waiter without a grant request is only woken
-- ("<id>") and retries. Returns true when a waiter was granted or woken.
local function hand_over(lock, fence, queue, waiters, now, channel)
  local head = live_head(queue, waiters, now)
  if not head then return false end
  local entry = redis.call('HGET', waiters, head)
  local seq, ttl, vhead, tail = string.match(entry, '^%d+\n(%d+)\n(%d+)\n([^\n]*)\n(.*)$')
  if not seq then
    tell(head, channel, head)
    return true
  end
  local token = next_token(fence)
  -- The holder's "since" is now, not when it started waiting.
  local owner = string.match(tail, '^%d*:(.*)$') or tail
  redis.call('SET', lock, lock_value(vhead, string.format('%d', now) .. ':' .. owner), 'PX', ttl)
  redis.call('ZREM', queue, head)
  redis.call('HDEL', waiters, head)
  tell(head, channel, head .. ' ' .. string.format('%d', token) .. ' ' .. seq)
  return true
end

-- Releases `lock` if its value starts with `prefix` (the releasing holder's) and serves the
-- queue: hands the lock to the live head waiter, or else wakes every waiter on `channel`.
-- Returns 1 when released, 0 when the key was not (or no longer) that holder's.
local function release_as(lock, fence, queue, waiters, prefix, channel)
  local value = redis.call('GET', lock)
  if value and string.sub(value, 1, string.len(prefix)) == prefix then
    redis.call('DEL', lock)
    if not hand_over(lock, fence, queue, waiters, now_ms(), channel) then
      redis.call('PUBLISH', channel, '')
    end
    return 1
  end
  return 0
end
