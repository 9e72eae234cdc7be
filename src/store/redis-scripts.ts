/*
 * The Lua scripts RedisStore runs. A script runs atomically in Redis; it does not roll
 * back on an error, so APPLY_CHANGES checks everything that could fail before its
 * first write, and a batch is written whole or refused whole.
 */

/**
 * ARGV: node, the changes as JSON (for the stream), the stream's MAXLEN, the notes to
 * other nodes as JSON ("" for none), then operations: `C nameKey json online holder`
 * (put client; `holder` is the node the record says the client is at), `R nameKey`
 * (remove client), `M id json mailboxKey` (put message), `D id` (remove message).
 */
export const APPLY_CHANGES = `
local node = ARGV[1]
local removed, put = {}, {}
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then i = i + 5
  elseif op == 'R' then i = i + 2
  elseif op == 'M' then
    local id = ARGV[i + 1]
    if put[id] or (not removed[id] and redis.call('HEXISTS', 'chat:messages', id) == 1) then
      return redis.error_reply('message id ' .. id .. ' is already stored')
    end
    put[id] = true
    i = i + 4
  elseif op == 'D' then
    removed[ARGV[i + 1]] = true
    put[ARGV[i + 1]] = nil
    i = i + 2
  else
    return redis.error_reply('unknown store operation ' .. tostring(op))
  end
end
local function releaseIfHeldBy(key, holder)
  if redis.call('HGET', 'chat:claims', key) == holder then redis.call('HDEL', 'chat:claims', key) end
end
i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'C' then
    local key = ARGV[i + 1]
    redis.call('HSET', 'chat:clients', key, ARGV[i + 2])
    if not redis.call('ZSCORE', 'chat:client-order', key) then
      redis.call('ZADD', 'chat:client-order', redis.call('INCR', 'chat:client-seq'), key)
    end
    -- A client online at a node holds its claim; offline (marked so by any node), it holds none.
    if ARGV[i + 3] == '1' then
      redis.call('HSET', 'chat:claims', key, ARGV[i + 4])
    else
      releaseIfHeldBy(key, ARGV[i + 4])
    end
    i = i + 5
  elseif op == 'R' then
    local key = ARGV[i + 1]
    redis.call('HDEL', 'chat:clients', key)
    redis.call('ZREM', 'chat:client-order', key)
    releaseIfHeldBy(key, node)
    i = i + 2
  elseif op == 'M' then
    local id = ARGV[i + 1]
    redis.call('HSET', 'chat:messages', id, ARGV[i + 2])
    redis.call('HSET', 'chat:message-mailbox', id, ARGV[i + 3])
    redis.call('ZADD', 'chat:mailbox:' .. ARGV[i + 3], id, id)
    i = i + 4
  else
    local id = ARGV[i + 1]
    local box = redis.call('HGET', 'chat:message-mailbox', id)
    if box then
      redis.call('ZREM', 'chat:mailbox:' .. box, id)
      redis.call('HDEL', 'chat:message-mailbox', id)
    end
    redis.call('HDEL', 'chat:messages', id)
    i = i + 2
  end
end
if ARGV[4] == '' then
  redis.call('XADD', 'chat:changes', 'MAXLEN', '~', ARGV[3], '*', 'node', node, 'changes', ARGV[2])
else
  redis.call('XADD', 'chat:changes', 'MAXLEN', '~', ARGV[3], '*', 'node', node, 'changes', ARGV[2], 'notes', ARGV[4])
end
return 1
`;

/** One consistent view of the table's order, the clients and the stored messages. */
export const LOAD_SUMMARY = `
return {
  redis.call('ZRANGE', 'chat:client-order', 0, -1),
  redis.call('HGETALL', 'chat:clients'),
  redis.call('HGETALL', 'chat:messages')
}
`;

/** ARGV: nameKey, node, force ('1'). Returns the holder when it is another node's, else nil. */
export const CLAIM_NAME = `
local holder = redis.call('HGET', 'chat:claims', ARGV[1])
if (not holder) or holder == ARGV[2] or ARGV[3] == '1' then
  redis.call('HSET', 'chat:claims', ARGV[1], ARGV[2])
  return false
end
return holder
`;

/** ARGV: the dead node. Releases every name it holds. */
export const RELEASE_CLAIMS_OF = `
local all = redis.call('HGETALL', 'chat:claims')
local released = 0
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', 'chat:claims', all[i])
    released = released + 1
  end
end
return released
`;
