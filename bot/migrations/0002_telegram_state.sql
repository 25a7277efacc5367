-- What the bot's replicas share when DATABASE_URL is set (bot/telegram/shared.py): the inbox of
-- Telegram updates, the chats Telegram moved, the question rate limits and the stats counters.
-- Every row carries the bot's id, so several bots may share one database.

-- The inbox: each update stored once (primary key), claimed by one replica at a time with a
-- lease that the replica renews while it handles the update; a dead replica's lease runs out
-- and another replica takes the update over.
CREATE TABLE telegram_updates (
    bot_id bigint NOT NULL,
    update_id bigint NOT NULL,
    payload jsonb NOT NULL,  -- the update as Telegram sent it
    received_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,  -- handling started this often
    claimed_by text,  -- the replica handling it (host, pid and a random part)
    lease_until timestamptz,  -- the claim holds until then unless renewed
    done_at timestamptz,
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX telegram_updates_pending ON telegram_updates (bot_id, update_id) WHERE state = 'pending';

-- Chats Telegram moved (a group upgraded to a supergroup): replies go to the new id.
CREATE TABLE telegram_chat_moves (
    bot_id bigint NOT NULL,
    old_id bigint NOT NULL,
    new_id bigint NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, old_id)
);

-- Question rate limits: one leaky bucket per user ('u') and per chat ('c'), as aiolimiter keeps
-- them in memory: `level` leaks at rate/60 per second and may reach `rate`.
CREATE TABLE telegram_rate_buckets (
    bot_id bigint NOT NULL,
    kind "char" NOT NULL CHECK (kind IN ('u', 'c')),
    key bigint NOT NULL,
    level double precision NOT NULL DEFAULT 0,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),  -- when `level` was last set
    noticed_at timestamptz,  -- when this asker was last told to slow down
    PRIMARY KEY (bot_id, kind, key)
);

-- One question against the user's and the chat's bucket, atomically across replicas:
-- 'answer' (counted in both), else 'notice' once per p_notice_window seconds for the asker
-- (the user, or the chat when there is no user), else 'drop'. p_notice_window NULL: never
-- 'notice'. Buckets are locked chat first, then user, so two calls never deadlock.
CREATE FUNCTION telegram_rate_verdict(
    p_bot bigint,
    p_user bigint,
    p_user_rate integer,
    p_chat bigint,
    p_chat_rate integer,
    p_notice_window double precision
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    now_ts timestamptz := clock_timestamp();
    user_level double precision;
    chat_level double precision;
    allowed boolean := true;
BEGIN
    INSERT INTO telegram_rate_buckets (bot_id, kind, key)
    SELECT p_bot, t.kind, t.key
    FROM (VALUES ('c'::"char", p_chat), ('u'::"char", p_user)) AS t (kind, key)
    WHERE t.key IS NOT NULL
    ON CONFLICT DO NOTHING;
    IF p_chat IS NOT NULL THEN
        SELECT greatest(0.0, level - extract(epoch FROM now_ts - at) * p_chat_rate / 60.0) INTO chat_level
        FROM telegram_rate_buckets WHERE bot_id = p_bot AND kind = 'c' AND key = p_chat FOR UPDATE;
        allowed := chat_level + 1 <= p_chat_rate;
    END IF;
    IF p_user IS NOT NULL THEN
        SELECT greatest(0.0, level - extract(epoch FROM now_ts - at) * p_user_rate / 60.0) INTO user_level
        FROM telegram_rate_buckets WHERE bot_id = p_bot AND kind = 'u' AND key = p_user FOR UPDATE;
        allowed := allowed AND user_level + 1 <= p_user_rate;
    END IF;
    IF allowed THEN
        UPDATE telegram_rate_buckets SET level = chat_level + 1, at = now_ts
        WHERE bot_id = p_bot AND kind = 'c' AND key = p_chat;
        UPDATE telegram_rate_buckets SET level = user_level + 1, at = now_ts
        WHERE bot_id = p_bot AND kind = 'u' AND key = p_user;
        RETURN 'answer';
    END IF;
    IF p_notice_window IS NULL THEN
        RETURN 'drop';
    END IF;
    UPDATE telegram_rate_buckets SET noticed_at = now_ts
    WHERE bot_id = p_bot
        AND (kind, key) = (CASE WHEN p_user IS NOT NULL THEN 'u'::"char" ELSE 'c'::"char" END, coalesce(p_user, p_chat))
        AND (noticed_at IS NULL OR noticed_at <= now_ts - make_interval(secs => p_notice_window));
    IF FOUND THEN
        RETURN 'notice';
    END IF;
    RETURN 'drop';
END;
$$;

-- Counters shown by /stats, summed over every replica.
CREATE TABLE telegram_counters (
    bot_id bigint NOT NULL,
    name text NOT NULL,
    value bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bot_id, name)
);
