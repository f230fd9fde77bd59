#pragma once
// The Lua scripts that make a publish atomic in Redis, and a history read consistent.
//
// Data model of channel C (docs/adr/0005-redis-data-model.md):
//   herald:{C}:m  hash  e = epoch (random, set when the hash is created), t = top offset,
//                       x = 1 once the channel's end (event "end") is published,
//                       b = bytes of the history list's entries (for history_bytes)
//   herald:{C}:h  list  history entries "<offset> <time ms> <event|.> <data json>"
//   herald:p:C    pub/sub channel, payload "<epoch> <offset> <time ms> <event|.> <data>"
//   herald:ctl:stop  pub/sub channel (first shard), payload "<channel> <reason>": streams' stops
//   herald:ctl:user  pub/sub channel (first shard), payload "<node id> <users-API command JSON>"
// The meta hash expires `meta_ttl` after the last publish: when it goes, the next publish
// draws a new epoch, so cursors of the lost life are answered "not recovered".
//
// Lost writes (a failover to a replica that had not received the last publications, or a
// restart that lost the last second of the append-only file): every script gets the
// replication ID of the primary it runs on (the broker reads it with INFO replication when
// it connects), and the meta hash keeps, in g, the one under which the channel was last
// written. A promoted replica, a restarted server, a server whose data was replaced draws
// a new replication ID. So g differs exactly when the channel's last writes may not all be
// here; the next publish then starts a new epoch (history and offsets go on), and a
// cursor of the old epoch past what this primary held of it (pt) gets an explicit reset
// instead of an offset that a lost message had; one at or before it reads on (pe, pt).
// Until then a read answers a cursor past the top "lost", not "ahead".
namespace herald::broker::redis_scripts {

/// The users API's control channel (redis_users.cpp).
inline constexpr const char* control_user = "herald:ctl:user";

// KEYS: meta, list. ARGV: pubsub channel, data, event, history size, ttl ms, meta ttl s,
// epoch candidate, now ms, expected offset ('' for none), '1' when this is the end,
// replication ID, history bytes (0: no bound; the newest entry always stays).
// Returns {epoch, offset}, or {'ended', top} / {'mismatch', top} when refused (nothing
// written then).
inline constexpr const char* publish = R"LUA(
local epoch = redis.call('HGET', KEYS[1], 'e')
local current = 0
if epoch then
  current = tonumber(redis.call('HGET', KEYS[1], 't'))
  if redis.call('HEXISTS', KEYS[1], 'x') == 1 then return {'ended', current} end
end
if ARGV[9] ~= '' and tonumber(ARGV[9]) ~= current + 1 then return {'mismatch', current} end
if not epoch then
  -- A new life: whatever history an expired epoch left behind belongs to the old one.
  epoch = ARGV[7]
  redis.call('HSET', KEYS[1], 'e', epoch, 't', 0, 'g', ARGV[11])
  redis.call('DEL', KEYS[2])
elseif redis.call('HGET', KEYS[1], 'g') ~= ARGV[11] then
  -- Last written under another primary (or life of this one): writes may be lost. The
  -- offsets this primary holds (up to `current`) are the old epoch's, unchanged: pe and
  -- pt let a cursor of the old epoch at or before them read on in the new one.
  local old = epoch
  if epoch == ARGV[7] then epoch = tostring(tonumber(epoch) % 4294967295 + 1) else epoch = ARGV[7] end
  redis.call('HSET', KEYS[1], 'e', epoch, 'g', ARGV[11], 'pe', old, 'pt', current)
end
local top = redis.call('HINCRBY', KEYS[1], 't', 1)
if ARGV[10] == '1' then redis.call('HSET', KEYS[1], 'x', 1) end
local size = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local now = tonumber(ARGV[8])
local max_bytes = tonumber(ARGV[12] or '0')
if size > 0 then
  local entry = top .. ' ' .. ARGV[8] .. ' ' .. ARGV[3] .. ' ' .. ARGV[2]
  -- An expired list went whole: its byte count with it.
  if redis.call('LLEN', KEYS[2]) == 0 then redis.call('HSET', KEYS[1], 'b', 0) end
  local len = redis.call('RPUSH', KEYS[2], entry)
  local bytes = redis.call('HINCRBY', KEYS[1], 'b', #entry)
  local function pop()
    local e = redis.call('LPOP', KEYS[2])
    len = len - 1
    bytes = redis.call('HINCRBY', KEYS[1], 'b', -#e)
  end
  while len > size do pop() end
  while max_bytes > 0 and len > 1 and bytes > max_bytes do pop() end
  if ttl > 0 then
    for i = 1, 1000 do
      local head = redis.call('LINDEX', KEYS[2], 0)
      if not head then break end
      local t = tonumber(string.match(head, '^%d+ (%d+)'))
      if t >= now - ttl then break end
      pop()
    end
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
else
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'b', 0)
end
local mttl = tonumber(ARGV[6])
if mttl > 0 then redis.call('EXPIRE', KEYS[1], mttl) end
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. top .. ' ' .. ARGV[8] .. ' ' .. ARGV[3] .. ' ' .. ARGV[2])
return {epoch, top}
)LUA";

// KEYS: meta, list. ARGV: mode (since|latest|earliest), since epoch, since offset, limit, ttl ms,
// now ms, max bytes (0: no bound; one entry always goes), the bytes a message's JSON
// element has beyond its entry (channel and field names), replication ID. Returns
// {epoch, top, status, ended, entries...} with status ok | lost (other epoch, evicted or
// expired) | ahead (offset past the top), and ended 1 when the channel's newest message is
// its end.
//
// A read writes nothing: a channel that has no life yet answers epoch 0, top 0, and the
// position (epoch 0, offset 0) means "before the first message of any life" (recovered
// while history still holds offset 1). So anonymous readers never create keys.
inline constexpr const char* history = R"LUA(
local epoch = redis.call('HGET', KEYS[1], 'e')
local from_start = ARGV[2] == '0' and ARGV[3] == '0'
if not epoch then
  if ARGV[1] == 'since' and not from_start then
    if ARGV[2] == '0' then return {'0', 0, 'ahead', 0} end
    return {'0', 0, 'lost', 0}
  end
  return {'0', 0, 'ok', 0}
end
local top = tonumber(redis.call('HGET', KEYS[1], 't'))
local limit = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local max_bytes = tonumber(ARGV[7] or '0')
local extra = tonumber(ARGV[8] or '0')
local function fresh(entry)
  if ttl <= 0 then return true end
  return tonumber(string.match(entry, '^%d+ (%d+)')) >= now - ttl
end
local out = {epoch, top, 'ok', redis.call('HEXISTS', KEYS[1], 'x')}
-- Appends entries to out, oldest first, while they fit in max_bytes (the first always goes).
local function take(items)
  local bytes = 0
  for i, e in ipairs(items) do
    bytes = bytes + #e + extra
    if max_bytes > 0 and i > 1 and bytes > max_bytes then break end
    table.insert(out, e)
  end
  return out
end
local len = redis.call('LLEN', KEYS[2])
if ARGV[1] == 'latest' then
  if limit > 0 and len > 0 then
    local items = redis.call('LRANGE', KEYS[2], -limit, -1)
    -- The newest that fit in max_bytes (the newest always goes).
    local first, bytes = #items + 1, 0
    while first > 1 do
      bytes = bytes + #items[first - 1] + extra
      if max_bytes > 0 and first <= #items and bytes > max_bytes then break end
      first = first - 1
    end
    for i = first, #items do
      if fresh(items[i]) then table.insert(out, items[i]) end
    end
  end
  return out
end
if ARGV[1] == 'earliest' then
  -- From the oldest entry still fresh (entries are in time order); always recovered.
  local start = 0
  if ttl > 0 then
    while start < len and not fresh(redis.call('LINDEX', KEYS[2], start)) do start = start + 1 end
  end
  if limit <= 0 or start >= len then return out end
  return take(redis.call('LRANGE', KEYS[2], start, start + limit - 1))
end
if ARGV[2] ~= epoch and not from_start then
  -- The epoch a failover replaced: at or before the offsets this primary kept of it, the
  -- same messages under the new epoch; past them, offsets of lost writes: a reset, but to
  -- where the kept ones end (pt), so that the reader gets all the new epoch holds. Any
  -- other epoch is lost.
  local pe = redis.call('HGET', KEYS[1], 'pe')
  if not pe or ARGV[2] ~= pe then out[3] = 'lost' return out end
  local pt = tonumber(redis.call('HGET', KEYS[1], 'pt'))
  if tonumber(ARGV[3]) > pt then
    out[2] = pt
    out[3] = 'lost'
    return out
  end
end
local since = tonumber(ARGV[3])
if since > top then
  -- Past the top of a channel last written under another primary: its writes were lost.
  if redis.call('HGET', KEYS[1], 'g') ~= ARGV[9] then out[3] = 'lost' else out[3] = 'ahead' end
  return out
end
if since == top then return out end
local first = top - len + 1
if len == 0 or since + 1 < first then out[3] = 'lost' return out end
local start = since + 1 - first
local items = redis.call('LRANGE', KEYS[2], start, start + limit - 1)
if #items > 0 and not fresh(items[1]) then out[3] = 'lost' return out end
return take(items)
)LUA";

}  // namespace herald::broker::redis_scripts
