-- Customer notifications, second part (docs/notifications.md): one outbox row per order,
-- event and channel (email, sms, webhook, chat), each with its own retries; the ETA-moved and
-- customer-facing exception events; tracking links for the page at /t/{token}.
-- depends: 0006_notifications

-- What each customer wants. notify_email / notify_sms / webhook_url exist since 0003.
ALTER TABLE customers ADD COLUMN notify_webhook boolean NOT NULL DEFAULT false;
UPDATE customers SET notify_webhook = true WHERE webhook_url IS NOT NULL;
-- The HMAC-SHA256 key the customer's system checks our webhook signatures with.
ALTER TABLE customers ADD COLUMN webhook_secret text;
-- Only an admin may let a webhook reach a loopback, link-local or private address.
ALTER TABLE customers ADD COLUMN webhook_allow_private boolean NOT NULL DEFAULT false;
-- A chat app as an Apprise URL (tgram://, slack://, ...): a secret, set by an admin.
ALTER TABLE customers ADD COLUMN chat_url text;
ALTER TABLE customers ADD COLUMN notify_chat boolean NOT NULL DEFAULT false;
-- Per channel, the events it carries: {"sms": ["arriving", "arrived"]}. A channel that is not
-- a key carries every event; null means every channel carries every event.
ALTER TABLE customers ADD COLUMN notify_events jsonb
    CHECK (notify_events IS NULL OR jsonb_typeof(notify_events) = 'object');

ALTER TABLE notifications DROP CONSTRAINT notifications_order_id_event_key;
ALTER TABLE notifications DROP CONSTRAINT notifications_event_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_event_check CHECK (event IN
    ('confirmed', 'dispatched', 'eta_moved', 'arriving', 'arrived', 'delivered', 'delayed',
     'exception'));
-- 'none': the customer had no channel on for this event; such a row is dead from the start,
-- so the dead rows show whom we could not reach.
ALTER TABLE notifications ADD COLUMN channel text NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email', 'sms', 'webhook', 'chat', 'none'));
-- What makes a notification one of a kind for its order and channel: the event for the
-- once-only events, 'eta_moved:<n>' for the n-th ETA move, 'exception:<kind>'.
ALTER TABLE notifications ADD COLUMN dedup_key text;
UPDATE notifications SET dedup_key = event;
ALTER TABLE notifications ALTER COLUMN dedup_key SET NOT NULL;
ALTER TABLE notifications ADD CONSTRAINT notifications_once
    UNIQUE (order_id, channel, dedup_key);
ALTER TABLE notifications ALTER COLUMN channel DROP DEFAULT;
CREATE INDEX notifications_order ON notifications (order_id, id);

ALTER TABLE notification_deliveries DROP CONSTRAINT notification_deliveries_channel_check;
ALTER TABLE notification_deliveries ADD CONSTRAINT notification_deliveries_channel_check
    CHECK (channel IN ('email', 'sms', 'webhook', 'chat'));

-- Settings the triggers read (one row; `tracklane serve` writes it from TRACKLANE_* at start).
CREATE TABLE notification_settings (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    eta_moved_min   real    NOT NULL DEFAULT 15 CHECK (eta_moved_min > 0),
    eta_moved_max   integer NOT NULL DEFAULT 3 CHECK (eta_moved_max >= 0)
);
INSERT INTO notification_settings DEFAULT VALUES;

-- The ETA the customer was last told (or first computed after dispatch), per order.
CREATE TABLE notification_eta (
    order_id  bigint      PRIMARY KEY REFERENCES orders (id),
    eta       timestamptz NOT NULL,
    moves     integer     NOT NULL DEFAULT 0
);

-- The channels that carry `event` for this customer now, or {none}.
CREATE FUNCTION notification_channels(c customers, event text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(nullif(array_agg(v.ch ORDER BY v.ch), '{}'), ARRAY['none'])
    FROM (VALUES ('email', c.notify_email AND c.email IS NOT NULL),
                 ('sms', c.notify_sms AND c.phone IS NOT NULL),
                 ('webhook', c.notify_webhook AND c.webhook_url IS NOT NULL),
                 ('chat', c.notify_chat AND c.chat_url IS NOT NULL)) AS v (ch, on_)
    WHERE v.on_ AND (c.notify_events IS NULL OR NOT c.notify_events ? v.ch
                     OR coalesce(c.notify_events -> v.ch ? event, false))
$$;

-- One outbox row per channel for each (order, event, dedup key, payload) given; 'none' rows
-- are dead at once. Called by the triggers below with what they found.
CREATE FUNCTION notification_enqueue(order_ids bigint[], events text[], dedup_keys text[],
                                     happened timestamptz[], extra jsonb[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO notifications (order_id, customer_id, event, dedup_key, channel, locale,
                               payload, status, last_error)
    SELECT x.order_id, o.customer_id, x.event, x.dedup_key, ch, c.locale,
           notification_payload(o, c, x.at) || coalesce(x.extra, '{}'),
           CASE WHEN ch = 'none' THEN 'dead' ELSE 'pending' END,
           CASE WHEN ch = 'none' THEN 'no channel: none is on for this customer and event' END
    FROM unnest(order_ids, events, dedup_keys, happened, extra)
         AS x (order_id, event, dedup_key, at, extra)
    JOIN orders o ON o.id = x.order_id
    JOIN customers c ON c.id = o.customer_id
    CROSS JOIN LATERAL unnest(notification_channels(c, x.event)) AS ch
    ON CONFLICT (order_id, channel, dedup_key) DO NOTHING
$$;

CREATE OR REPLACE FUNCTION notification_from_order_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notification_enqueue(array_agg(f.order_id), array_agg(f.event),
                                 array_agg(f.event), array_agg(f.at), array_agg(NULL::jsonb))
    FROM (SELECT DISTINCT ON (e.order_id, m.event) e.order_id, m.event, e.at
          FROM notify_new e
          JOIN (VALUES ('created', 'confirmed'), ('in_transit', 'dispatched'),
                       ('arriving', 'arriving'), ('arrived', 'arrived'),
                       ('delivered', 'delivered')) AS m (to_state, event)
            ON m.to_state = e.to_state
          WHERE e.kind IN ('created', 'state')
          ORDER BY e.order_id, m.event, e.id) f
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;

-- A delay on an order → 'delayed'; damage or a short load → 'exception' with the kind as
-- `reason` (the summary is internal and is not sent).
CREATE OR REPLACE FUNCTION notification_from_exceptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notification_enqueue(array_agg(f.order_id), array_agg(f.event),
                                 array_agg(f.dedup_key), array_agg(f.opened_at),
                                 array_agg(f.extra))
    FROM (SELECT DISTINCT ON (x.order_id, x.kind) x.order_id, x.opened_at,
                 CASE x.kind WHEN 'delay' THEN 'delayed' ELSE 'exception' END AS event,
                 CASE x.kind WHEN 'delay' THEN 'delayed' ELSE 'exception:' || x.kind END
                     AS dedup_key,
                 CASE x.kind WHEN 'delay' THEN NULL ELSE jsonb_build_object('reason', x.kind)
                 END AS extra
          FROM notify_new x
          WHERE x.order_id IS NOT NULL AND x.kind IN ('delay', 'damage', 'short_load')
          ORDER BY x.order_id, x.kind, x.id) f
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;

-- A pending stop's ETA moved: the orders it delivers that are in transit. The first ETA after
-- dispatch is the baseline (the dispatched message gave the window); a move of at least
-- eta_moved_min minutes from what the customer was last told is 'eta_moved' (at most
-- eta_moved_max per order) and the new baseline.
CREATE FUNCTION notification_from_stop_etas() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cfg notification_settings;
    queued integer;
BEGIN
    SELECT * INTO cfg FROM notification_settings;
    -- New baselines.
    INSERT INTO notification_eta (order_id, eta)
    SELECT o.id, s.eta
    FROM notify_new s
    JOIN orders o ON o.trip_id = s.trip_id AND o.stop_seq = s.seq AND o.state = 'in_transit'
    WHERE s.state = 'pending' AND s.eta IS NOT NULL
    ON CONFLICT (order_id) DO NOTHING;
    -- Moves past the threshold become the new baseline and a notification.
    WITH moved AS (
        UPDATE notification_eta n SET eta = s.eta, moves = n.moves + 1
        FROM notify_new s
        JOIN orders o ON o.trip_id = s.trip_id AND o.stop_seq = s.seq
                     AND o.state = 'in_transit'
        WHERE n.order_id = o.id AND s.state = 'pending' AND s.eta IS NOT NULL
          AND n.moves < cfg.eta_moved_max
          AND abs(extract(epoch FROM s.eta - n.eta)) >= cfg.eta_moved_min * 60
        RETURNING n.order_id, s.eta, s.eta_earliest, s.eta_latest, s.eta_at, n.moves)
    SELECT count(*) INTO queued FROM (
        SELECT notification_enqueue(
            array_agg(m.order_id), array_agg('eta_moved'::text),
            array_agg('eta_moved:' || m.moves), array_agg(coalesce(m.eta_at, now())),
            array_agg(jsonb_build_object(
                'eta', to_char(m.eta AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'eta_earliest',
                    to_char(m.eta_earliest AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                'eta_latest',
                    to_char(m.eta_latest AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))))
        FROM moved m
        HAVING count(*) > 0) q;
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_stop_etas AFTER UPDATE ON trip_stops
    REFERENCING NEW TABLE AS notify_new
    FOR EACH STATEMENT EXECUTE FUNCTION notification_from_stop_etas();

-- Tracking links: the page at /t/{token}. The token is 192 random bits (base64url), made by
-- the service; one live link per order (a revoked link stays for the record). A link expires
-- TRACKLANE_TRACKING_LINK_DAYS after the order is delivered or cancelled.
CREATE TABLE tracking_links (
    token       text        PRIMARY KEY CHECK (length(token) >= 22),
    order_id    bigint      NOT NULL REFERENCES orders (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);
CREATE UNIQUE INDEX tracking_links_live ON tracking_links (order_id) WHERE revoked_at IS NULL;
