-- The live map's notifications (docs/live-map.md): triggers that pg_notify('tracklane_live')
-- every change the map shows, inside the writing transaction, so a listener hears only what
-- committed, in commit order. Each payload is {"k": kind, "at": epoch ms, "rows": [...]};
-- statement-level triggers read transition tables and split a statement's rows into payloads
-- of at most ~7000 bytes (pg_notify refuses 8000). Free text is cut short so one row always
-- fits, and nothing here can fail the writer's transaction on size.
-- depends: 0004_geofencing

-- Fixed-width UTC ISO 8601 with milliseconds: the same everywhere, and sortable as text (the
-- live hub keeps each vehicle's newest fix by comparing these).
CREATE FUNCTION live_time(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Send `rows` (JSON objects as text) of one kind, in as few payloads as fit the budget.
CREATE FUNCTION live_send(kind text, rows text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    budget constant integer := 7000;
    head text;
    body text := '';
    item text;
BEGIN
    IF rows IS NULL THEN
        RETURN;
    END IF;
    head := '{"k":"' || kind || '","at":'
        || floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint || ',"rows":[';
    FOREACH item IN ARRAY rows LOOP
        IF octet_length(head) + octet_length(item) + 2 > budget THEN
            RAISE WARNING 'live map: a % row of % bytes is too big to notify; skipped',
                kind, octet_length(item);
            CONTINUE;
        END IF;
        IF body <> '' AND octet_length(head) + octet_length(body) + octet_length(item) + 3
                > budget THEN
            PERFORM pg_notify('tracklane_live', head || body || ']}');
            body := '';
        END IF;
        body := CASE WHEN body = '' THEN item ELSE body || ',' || item END;
    END LOOP;
    IF body <> '' THEN
        PERFORM pg_notify('tracklane_live', head || body || ']}');
    END IF;
END
$$;

-- vehicle: each vehicle's last fix, with its trip in state loading or departed (else null).
-- Called once per statement with all its rows (a function per row costs twice as much).
CREATE FUNCTION live_vehicle_rows(vs vehicle_state[]) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT array_agg(json_build_object(
        'vehicle_id', s.vehicle_id, 'lat', s.lat, 'lon', s.lon, 'speed_mps', s.speed_mps,
        'heading_deg', s.heading_deg, 'last_fix_at', live_time(s.last_fix_at),
        'trip_id', (SELECT t.id FROM trips t
                    WHERE t.vehicle_id = s.vehicle_id AND t.state IN ('loading', 'departed')
                    ORDER BY t.state = 'departed' DESC, t.created_at DESC LIMIT 1)
    )::text)
    FROM unnest(vs) s
$$;

-- So the trip lookup above stays an index probe per vehicle.
CREATE INDEX trips_vehicle_active ON trips (vehicle_id) WHERE state IN ('loading', 'departed');

-- Tracking updates every vehicle of a batch (its smoothed speed too): only rows whose position
-- changed are sent, and rows with no fix yet never are.
CREATE FUNCTION live_vehicle_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM live_send('vehicle', (
            SELECT live_vehicle_rows(array_agg(n::vehicle_state))
            FROM live_new n JOIN live_old o ON o.vehicle_id = n.vehicle_id
            WHERE n.lat IS NOT NULL AND n.lon IS NOT NULL
              AND (n.last_fix_at, n.lat, n.lon, n.speed_mps, n.heading_deg)
                  IS DISTINCT FROM (o.last_fix_at, o.lat, o.lon, o.speed_mps, o.heading_deg)));
    ELSE
        PERFORM live_send('vehicle', (
            SELECT live_vehicle_rows(array_agg(n::vehicle_state)) FROM live_new n
            WHERE n.lat IS NOT NULL AND n.lon IS NOT NULL));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER live_vehicle_insert AFTER INSERT ON vehicle_state
    REFERENCING NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_vehicle_notify();
CREATE TRIGGER live_vehicle_update AFTER UPDATE ON vehicle_state
    REFERENCING OLD TABLE AS live_old NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_vehicle_notify();

-- order: state moves only (kind 'state'), with the order's number and planned trip.
CREATE FUNCTION live_order_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM live_send('order', (
        SELECT array_agg(json_build_object(
            'number', o.number, 'from_state', e.from_state, 'to_state', e.to_state,
            'at', live_time(e.at), 'trip_id', o.trip_id, 'trigger', left(e.trigger, 200)
        )::text ORDER BY e.id)
        FROM live_new e JOIN orders o ON o.id = e.order_id
        WHERE e.kind = 'state'));
    RETURN NULL;
END
$$;

CREATE TRIGGER live_order_insert AFTER INSERT ON order_events
    REFERENCING NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_order_notify();

-- exception: opened, acknowledged, resolved or otherwise changed.
CREATE FUNCTION live_exception_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM live_send('exception', (
        SELECT array_agg(json_build_object(
            'id', x.id, 'kind', x.kind, 'status', x.status, 'summary', left(x.summary, 500),
            'order_number', o.number, 'vehicle_id', x.vehicle_id, 'trip_id', x.trip_id,
            'opened_at', live_time(x.opened_at)
        )::text ORDER BY x.id)
        FROM live_new x LEFT JOIN orders o ON o.id = x.order_id));
    RETURN NULL;
END
$$;

CREATE TRIGGER live_exception_insert AFTER INSERT ON exceptions
    REFERENCING NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_exception_notify();
CREATE TRIGGER live_exception_update AFTER UPDATE ON exceptions
    REFERENCING NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_exception_notify();

-- scan: the verdict a dock was given, with the scanned code and the order it named.
CREATE FUNCTION live_scan_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM live_send('scan', (
        SELECT array_agg(json_build_object(
            'event_id', n.event_id, 'site', n.site, 'gateway', n.gateway, 'door', n.door,
            'station', n.station, 'verdict', n.verdict, 'message', left(n.message, 500),
            'decided_at', live_time(n.decided_at),
            'code', (SELECT left(s.code, 200) FROM scans s WHERE s.event_id = n.event_id
                     LIMIT 1),
            'order_number', o.number
        )::text ORDER BY n.decided_at, n.event_id)
        FROM live_new n LEFT JOIN orders o ON o.id = n.order_id));
    RETURN NULL;
END
$$;

CREATE TRIGGER live_scan_insert AFTER INSERT ON scan_outcomes
    REFERENCING NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_scan_notify();

-- eta: a stop's state, ETA or arrival changed (tracking rewrites stops of a whole batch).
CREATE FUNCTION live_eta_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM live_send('eta', (
        SELECT array_agg(json_build_object(
            'trip_id', n.trip_id, 'vehicle_id', t.vehicle_id, 'seq', n.seq, 'state', n.state,
            'eta', live_time(n.eta), 'eta_earliest', live_time(n.eta_earliest),
            'eta_latest', live_time(n.eta_latest), 'arrived_at', live_time(n.arrived_at)
        )::text ORDER BY n.trip_id, n.seq)
        FROM live_new n
        JOIN live_old o ON o.trip_id = n.trip_id AND o.seq = n.seq
        JOIN trips t ON t.id = n.trip_id
        WHERE (n.state, n.eta, n.eta_earliest, n.eta_latest, n.arrived_at)
              IS DISTINCT FROM (o.state, o.eta, o.eta_earliest, o.eta_latest, o.arrived_at)));
    RETURN NULL;
END
$$;

CREATE TRIGGER live_eta_update AFTER UPDATE ON trip_stops
    REFERENCING OLD TABLE AS live_old NEW TABLE AS live_new
    FOR EACH STATEMENT EXECUTE FUNCTION live_eta_notify();

-- gateway: row-level, because device_status may become a TimescaleDB hypertable, and
-- hypertables refuse transition tables. Device statuses are few; one payload per row is fine.
CREATE FUNCTION live_gateway_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM live_send('gateway', ARRAY[json_build_object(
        'site', NEW.site, 'gateway', NEW.gateway, 'device', NEW.device, 'state', NEW.state,
        'detail', left(NEW.detail, 500), 'time', live_time(NEW.time)
    )::text]);
    RETURN NULL;
END
$$;

CREATE TRIGGER live_gateway_insert AFTER INSERT ON device_status
    FOR EACH ROW EXECUTE FUNCTION live_gateway_notify();
