-- Customer notifications (docs/notifications.md): a transactional outbox. Triggers on
-- order_events and exceptions write one `notifications` row per order and customer-facing
-- event in the same transaction as the state change; `UNIQUE (order_id, event)` with
-- ON CONFLICT DO NOTHING makes a redelivered or concurrently applied move notify once. The
-- sender (ingest_service/notify) claims due rows with FOR UPDATE SKIP LOCKED, sends them and
-- logs every attempt in `notification_deliveries`.
-- depends: 0005_live

ALTER TABLE customers ADD COLUMN locale text NOT NULL DEFAULT 'en'
    CHECK (locale IN ('en', 'zh-CN'));
-- Quiet hours, in the customer's own time zone: no message goes between quiet_start and
-- quiet_end (a window may wrap midnight); none when either is null.
ALTER TABLE customers ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
ALTER TABLE customers ADD COLUMN quiet_start time;
ALTER TABLE customers ADD COLUMN quiet_end time;

CREATE TABLE notifications (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id         bigint      NOT NULL REFERENCES orders (id),
    customer_id      bigint      NOT NULL REFERENCES customers (id),
    event            text        NOT NULL CHECK (event IN
                         ('confirmed', 'dispatched', 'arriving', 'arrived', 'delivered',
                          'delayed')),
    locale           text        NOT NULL DEFAULT 'en',
    payload          jsonb       NOT NULL DEFAULT '{}',  -- what the templates need
    status           text        NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sent', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (order_id, event)
);
-- The sender's queue: due pending rows, oldest first.
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_customer ON notifications (customer_id);

-- Every attempt on every channel: the delivery log per order.
CREATE TABLE notification_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint      NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          text        NOT NULL CHECK (channel IN ('email')),
    address          text        NOT NULL,
    attempt          integer     NOT NULL CHECK (attempt > 0),
    at               timestamptz NOT NULL DEFAULT now(),
    outcome          text        NOT NULL CHECK (outcome IN ('sent', 'failed')),
    error            text
);
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id, id);

-- What the templates read, frozen when the event happened: the order number, the customer's
-- name, the delivery window and when it happened (ISO 8601 UTC strings).
CREATE FUNCTION notification_payload(o orders, c customers, happened timestamptz) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(
        'order_number', o.number,
        'customer_name', c.name,
        'window_start', to_char(o.window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'window_end', to_char(o.window_end AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'at', to_char(happened AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

-- Order moves → outbox rows. Creation is recorded as kind 'created' with to_state 'created';
-- later moves as kind 'state'. One statement may carry several rows of one order and event:
-- DISTINCT ON keeps the first, and the unique key turns away what an earlier (or a
-- concurrent, once it commits) transaction already wrote.
CREATE FUNCTION notification_from_order_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (order_id, customer_id, event, locale, payload)
    SELECT DISTINCT ON (e.order_id, m.event)
           e.order_id, o.customer_id, m.event, c.locale, notification_payload(o, c, e.at)
    FROM notify_new e
    JOIN (VALUES ('created', 'confirmed'), ('in_transit', 'dispatched'),
                 ('arriving', 'arriving'), ('arrived', 'arrived'),
                 ('delivered', 'delivered')) AS m (to_state, event)
      ON m.to_state = e.to_state
    JOIN orders o ON o.id = e.order_id
    JOIN customers c ON c.id = o.customer_id
    WHERE e.kind IN ('created', 'state')
    ORDER BY e.order_id, m.event, e.id
    ON CONFLICT (order_id, event) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_order_events AFTER INSERT ON order_events
    REFERENCING NEW TABLE AS notify_new
    FOR EACH STATEMENT EXECUTE FUNCTION notification_from_order_events();

-- A delay exception on an order → 'delayed' (once per order; the summary is internal and is
-- not sent to the customer).
CREATE FUNCTION notification_from_exceptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (order_id, customer_id, event, locale, payload)
    SELECT DISTINCT ON (x.order_id)
           x.order_id, o.customer_id, 'delayed', c.locale, notification_payload(o, c, x.opened_at)
    FROM notify_new x
    JOIN orders o ON o.id = x.order_id
    JOIN customers c ON c.id = o.customer_id
    WHERE x.kind = 'delay'
    ORDER BY x.order_id, x.id
    ON CONFLICT (order_id, event) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_exceptions AFTER INSERT ON exceptions
    REFERENCING NEW TABLE AS notify_new
    FOR EACH STATEMENT EXECUTE FUNCTION notification_from_exceptions();
