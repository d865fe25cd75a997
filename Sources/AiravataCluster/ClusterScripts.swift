import AiravataRedis

/// The Lua scripts the cluster runs in Redis, by digest (`EVALSHA`). Each runs atomically, which is the point:
/// append-and-publish cannot interleave with another node's, and an admission check
/// cannot race another node's.
enum ClusterScripts {
    /// KEYS: stream, channel, accepted counter. ARGV: max length, then one payload per event.
    /// Appends each event to the replay stream and publishes "<entry id>\n<payload>";
    /// returns the entry ids, which are the events' cursors. A missing stream (new, or lost
    /// with Redis) first gets its epoch mark, an entry without an event.
    static let publish = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('XADD', KEYS[1], '*', 'epoch', '1') end
        local ids = {}
        for i = 2, #ARGV do
          local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
          redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[i])
          ids[i - 1] = id
        end
        redis.call('INCRBY', KEYS[3], #ARGV - 1)
        return ids
        """)

    /// KEYS: stream, v2 channel, accepted counter. ARGV: max length, then one v2 payload per
    /// event. Appends each event to the replay stream and publishes one message for all of
    /// them: per event "<entry id> <payload length>\n<payload>". Returns the entry ids.
    /// The stream is trimmed once per call, and each payload is copied once into the message
    /// (no per-event concatenation): ~8% less Redis time per event (`INFO commandstats`).
    static let publishBatch = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('XADD', KEYS[1], '*', 'epoch', '1') end
        local ids = {}
        local records = {}
        for i = 2, #ARGV do
          local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
          ids[i - 1] = id
          records[#records + 1] = id .. ' ' .. #ARGV[i] .. '\\n'
          records[#records + 1] = ARGV[i]
        end
        redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
        redis.call('PUBLISH', KEYS[2], table.concat(records))
        redis.call('INCRBY', KEYS[3], #ARGV - 1)
        return ids
        """)

    /// KEYS: stream, v3 channel, accepted counter, block list, block events.
    /// ARGV: replay length (events), event count, block body (the node's bytes, untouched).
    ///
    /// Appends the whole block as one stream entry, its id chosen by Redis as for any entry:
    /// the block's first cursor. The events after the first get the cursors just above, one
    /// apart, and the stream's last id is moved to the last of them (`XSETID`), so that the
    /// next entry, whoever appends it, starts above the block. Publishes a header
    /// (`<id> <count> <body bytes>`), then the body as it came. Once the blocks hold a
    /// sixteenth (at least 64 events) more than `replay length` events, trims the log to the
    /// newest blocks that hold that many (whole stream nodes, `~`), and by entry count as
    /// before, a backstop should the block list be lost. Returns the id.
    ///
    /// The body is never concatenated or cut here: Lua hashes every string it makes, byte by
    /// byte, and a payload made into a string twice was a fifth of Redis's time per event.
    static let publishBlock = RedisScript(
        """
        local count = tonumber(ARGV[2])
        if not count or count < 1 or count > 100000 or string.format('%d', count) ~= ARGV[2] then
          return redis.error_reply('bad event count: ' .. tostring(ARGV[2]))
        end
        if redis.call('EXISTS', KEYS[1]) == 0 then
          redis.call('XADD', KEYS[1], '*', 'epoch', '1')
          redis.call('DEL', KEYS[4], KEYS[5])
        end
        local function parse(id)
          local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
          return tonumber(ms), tonumber(seq)
        end
        local id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'b', ARGV[3])
        if count > 1 then
          -- Sequences stay far below 2^53, where Lua's numbers stop being exact: Redis starts
          -- each millisecond at 0, and each entry adds at most 100000.
          local ms, seq = parse(id)
          redis.call('XSETID', KEYS[1], string.format('%d-%d', ms, seq + count - 1))
        end
        redis.call('RPUSH', KEYS[4], id .. ' ' .. ARGV[2])
        local held = redis.call('INCRBY', KEYS[5], count)
        local keep = tonumber(ARGV[1])
        -- Trimmed in steps of a sixteenth of the length, not on every call.
        if held > keep + math.max(64, math.floor(keep / 16)) then
          local cut
          for _ = 1, 1024 do
            local oldest, events = string.match(redis.call('LINDEX', KEYS[4], 0) or '', '^(%d+-%d+) (%d+)$')
            -- Down to this block: the count was off (the list was lost). It starts again here,
            -- and nothing is cut: the blocks popped on the way are recent.
            if oldest == id then
              held = count
              cut = nil
              break
            end
            if oldest and held - tonumber(events) < keep then break end
            redis.call('LPOP', KEYS[4])
            if oldest then
              held = held - tonumber(events)
              local ms, seq = parse(oldest)
              cut = string.format('%d-%d', ms, seq + tonumber(events))
            end
          end
          redis.call('SET', KEYS[5], held)
          if cut then redis.call('XTRIM', KEYS[1], 'MINID', '~', cut) end
          redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
        end
        redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[2] .. ' ' .. string.len(ARGV[3]))
        redis.call('PUBLISH', KEYS[2], ARGV[3])
        redis.call('INCRBY', KEYS[3], count)
        return id
        """)

    /// KEYS: the log floor. ARGV: a cursor. Raises the floor to the cursor (never lowers it);
    /// returns the floor. Cursors compare as (milliseconds, sequence).
    static let raiseLogFloor = RedisScript(
        """
        local function parse(c)
          local ms, seq = string.match(c or '', '^(%d+)-(%d+)$')
          return tonumber(ms), tonumber(seq)
        end
        local ms, seq = parse(ARGV[1])
        if not ms then return redis.error_reply('not a cursor: ' .. tostring(ARGV[1])) end
        local current = redis.call('GET', KEYS[1])
        local cms, cseq = parse(current)
        if cms and (cms > ms or (cms == ms and cseq >= seq)) then return current end
        redis.call('SET', KEYS[1], ARGV[1])
        return ARGV[1]
        """)

    /// KEYS: stream, channel, accepted counter, ids by acceptance time (sorted set), first
    /// cursor by id (hash). ARGV: max length, bus format ('1' or '2'), window ms, most ids
    /// remembered, then per event its producer id ('' for none) and its payload.
    /// `publish`/`publishBatch` for requests that carry producer ids: an id accepted within the
    /// window is not appended again, and the check is in the same atomic step as the append,
    /// so that two nodes cannot both accept one id. Answers per event its cursor, or '=' and
    /// the id's first cursor for a duplicate. Forgetting is bounded per call (`forgetPerCall`
    /// beyond the events added), so that one call never stalls Redis.
    static let publishOnce = RedisScript(
        """
        local forgetPerCall = 1024
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local window = tonumber(ARGV[3])
        local function forget(ids)
          if #ids > 0 then
            redis.call('ZREM', KEYS[4], unpack(ids))
            redis.call('HDEL', KEYS[5], unpack(ids))
          end
        end
        forget(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - window, 'LIMIT', 0, forgetPerCall))
        if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('XADD', KEYS[1], '*', 'epoch', '1') end
        local answers = {}
        local records = {}
        local added = 0
        for i = 5, #ARGV, 2 do
          local key = ARGV[i]
          local payload = ARGV[i + 1]
          local seen = key ~= '' and redis.call('ZSCORE', KEYS[4], key)
          local first = seen and tonumber(seen) > now - window and redis.call('HGET', KEYS[5], key)
          if first then
            answers[#answers + 1] = '=' .. first
          else
            local id = redis.call('XADD', KEYS[1], '*', 'e', payload)
            if key ~= '' then
              redis.call('ZADD', KEYS[4], now, key)
              redis.call('HSET', KEYS[5], key, id)
            end
            answers[#answers + 1] = id
            added = added + 1
            if ARGV[2] == '2' then
              records[#records + 1] = id .. ' ' .. #payload .. '\\n'
              records[#records + 1] = payload
            else
              redis.call('PUBLISH', KEYS[2], id .. '\\n' .. payload)
            end
          end
        end
        if added > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1]) end
        if #records > 0 then redis.call('PUBLISH', KEYS[2], table.concat(records)) end
        redis.call('INCRBY', KEYS[3], added)
        local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[4])
        if excess > 0 then forget(redis.call('ZRANGE', KEYS[4], 0, math.min(excess, forgetPerCall + added) - 1)) end
        redis.call('PEXPIRE', KEYS[4], window)
        redis.call('PEXPIRE', KEYS[5], window)
        return answers
        """)

    /// KEYS: stream. Adds the epoch mark to a missing or empty stream (an operator's
    /// `XTRIM MAXLEN 0`) and returns its id, so that there is always a cursor to start a
    /// client from; returns nil for a stream with an entry (the caller reads the newest,
    /// which may be a large block, rather than copy it into Lua: only an entry appended
    /// between the caller's read and this script is).
    static let markEpoch = RedisScript(
        """
        if #redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) == 0 then
          return redis.call('XADD', KEYS[1], '*', 'epoch', '1')
        end
        return false
        """)

    /// The admission's check, for `admit` and `admitAndSaveSession`. KEYS[1…3]: user hash, IP
    /// hash, all-connections hash. ARGV[1…5]: instance, lease key prefix, user limit, IP limit,
    /// global limit. Each hash maps node instance → count; counts of instances whose lease
    /// expired are dropped, so a crashed node stops counting. Returns the name of the limit
    /// that refuses the connection, or nothing.
    private static let admissionCheck = """
        local function live(key)
          local total = 0
          local entries = redis.call('HGETALL', key)
          for i = 1, #entries, 2 do
            if redis.call('EXISTS', ARGV[2] .. entries[i]) == 1 then
              total = total + tonumber(entries[i + 1])
            else
              redis.call('HDEL', key, entries[i])
            end
          end
          return total
        end
        if live(KEYS[3]) >= tonumber(ARGV[5]) then return 'global' end
        if live(KEYS[1]) >= tonumber(ARGV[3]) then return 'user' end
        if live(KEYS[2]) >= tonumber(ARGV[4]) then return 'ip' end
        for i = 1, 3 do redis.call('HINCRBY', KEYS[i], ARGV[1], 1) end

        """

    /// KEYS and ARGV as for `admissionCheck`. Returns 'ok' (and counts the connection) or the
    /// name of the limit that refused it.
    static let admit = RedisScript(admissionCheck + "return 'ok'\n")

    /// KEYS: the hashes. ARGV: instance, how many connections to give back (1 if absent).
    /// A count that reaches zero or below is removed, so an owed release given back after an
    /// absolute rewrite cannot leave a negative count.
    static let release = RedisScript(
        """
        local n = tonumber(ARGV[2]) or 1
        for i = 1, #KEYS do
          if redis.call('HINCRBY', KEYS[i], ARGV[1], -n) <= 0 then redis.call('HDEL', KEYS[i], ARGV[1]) end
        end
        return 'ok'
        """)

    /// Saves a session, drops expired ids from its user's index and evicts the user's oldest
    /// sessions beyond the bound; returns how many it evicted.
    private static let sessionSaver = """
        local function save_session(session, index, record, ttl, id, most, prefix, now)
          ttl = tonumber(ttl)
          now = tonumber(now)
          redis.call('SET', session, record, 'PX', ttl)
          redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
          redis.call('ZADD', index, now + ttl, id)
          local excess = redis.call('ZCARD', index) - tonumber(most)
          local evicted = 0
          if excess > 0 then
            -- Oldest first, never the session being saved (it may tie on the score).
            for _, old in ipairs(redis.call('ZRANGE', index, 0, excess)) do
              if evicted < excess and old ~= id then
                redis.call('DEL', prefix .. old)
                redis.call('ZREM', index, old)
                evicted = evicted + 1
              end
            end
          end
          redis.call('PEXPIRE', index, ttl)
          return evicted
        end

        """

    /// KEYS: session, the user's session index. ARGV: record, ttl ms, session id, most
    /// sessions per user, session key prefix, now ms. Returns how many sessions it evicted.
    static let saveSession = RedisScript(
        sessionSaver + """
            return save_session(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])

            """)

    /// `admit`, then, for an admitted connection, `saveSession`: one round trip per connect
    /// instead of two. KEYS: the three hashes, then the session and the user's session index.
    /// ARGV: the admission's five, then the save's six. Answers as `admit` does, except
    /// 'ok-unsaved <Redis error>' when the connection was counted but its session could not
    /// be saved (the save runs under pcall, so that a failed save never leaves a count
    /// behind unanswered).
    static let admitAndSaveSession = RedisScript(
        sessionSaver + admissionCheck + """
            local saved, failure = pcall(save_session, KEYS[4], KEYS[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
            if saved then return 'ok' end
            if type(failure) == 'table' then failure = failure.err end
            return 'ok-unsaved ' .. tostring(failure)

            """)
}
