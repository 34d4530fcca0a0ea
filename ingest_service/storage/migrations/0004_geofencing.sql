-- Geofences and what they move: fences, trackers on vehicles, trip stops and routes, each
-- vehicle's last fix and smoothed speed, the per-(vehicle, fence) hysteresis state, confirmed
-- entries and exits, and proof of delivery. The rules live in the pure `geofence` package.
-- depends: 0003_orders

CREATE TABLE geofences (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN
                    ('warehouse', 'depot', 'customer_site', 'restricted_zone', 'route_corridor')),
    -- A GeoJSON Feature as geofence/shapes.py reads it: a Polygon or MultiPolygon, or a
    -- Point with properties.radius_m for a circle.
    feature     jsonb       NOT NULL,
    site        text,       -- for a warehouse or depot: the site it stands for
    order_id    bigint      REFERENCES orders (id),  -- a destination fence made for one order
    active      boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer     NOT NULL DEFAULT 1
);
CREATE INDEX geofences_order ON geofences (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX geofences_site ON geofences (site, kind) WHERE site IS NOT NULL;

ALTER TABLE orders ADD COLUMN dest_fence_id bigint REFERENCES geofences (id);
ALTER TABLE orders ADD COLUMN stop_seq integer;  -- which stop of its trip delivers it

-- Which vehicle a GNSS device reports for: its positions are the vehicle's positions.
CREATE TABLE trackers (
    site         text        NOT NULL,
    gateway      text        NOT NULL,
    device       text        NOT NULL,
    vehicle_id   text        NOT NULL REFERENCES vehicles (id),
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    assigned_by  text        NOT NULL,
    PRIMARY KEY (site, gateway, device)
);
CREATE INDEX trackers_vehicle ON trackers (vehicle_id);

ALTER TABLE trips ADD COLUMN driver text;
ALTER TABLE trips ADD COLUMN route jsonb;  -- the planned route: a GeoJSON LineString
ALTER TABLE trips ADD COLUMN origin_fence_id bigint REFERENCES geofences (id);
ALTER TABLE trips ADD COLUMN completed_at timestamptz;

CREATE TABLE trip_stops (
    trip_id       text        NOT NULL REFERENCES trips (id),
    seq           integer     NOT NULL CHECK (seq > 0),
    fence_id      bigint      NOT NULL REFERENCES geofences (id),
    state         text        NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'arriving', 'arrived', 'done')),
    eta           timestamptz,
    eta_earliest  timestamptz,
    eta_latest    timestamptz,
    eta_at        timestamptz,  -- the fix the ETA was computed from
    arrived_at    timestamptz,
    PRIMARY KEY (trip_id, seq)
);

-- One row per vehicle, locked while a fix of it is processed: its last fix (the live map's
-- "where is it now" without scanning history) and geofence/eta.py's smoothed speed.
CREATE TABLE vehicle_state (
    vehicle_id   text        PRIMARY KEY REFERENCES vehicles (id),
    last_fix_at  timestamptz,
    lat          double precision,
    lon          double precision,
    speed_mps    real,
    heading_deg  real,
    speed_state  jsonb       NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- geofence/state.py's FenceState per (vehicle, fence), kept under the vehicle's row lock.
CREATE TABLE vehicle_fence_state (
    vehicle_id  text        NOT NULL REFERENCES vehicles (id),
    fence_id    bigint      NOT NULL REFERENCES geofences (id),
    state       jsonb       NOT NULL,
    inside      boolean     NOT NULL DEFAULT false,  -- the confirmed side, for queries
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, fence_id)
);

-- Confirmed entries and exits: `at` when the dwell began, `confirmed_at` the fix that
-- completed it (see geofence/state.py).
CREATE TABLE fence_transitions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vehicle_id         text        NOT NULL REFERENCES vehicles (id),
    fence_id           bigint      NOT NULL REFERENCES geofences (id),
    kind               text        NOT NULL CHECK (kind IN ('entered', 'exited')),
    at                 timestamptz NOT NULL,
    confirmed_at       timestamptz NOT NULL,
    initial            boolean     NOT NULL DEFAULT false,
    evidence_event_id  uuid,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fence_transitions_vehicle ON fence_transitions (vehicle_id, at);

-- Proof of delivery: when and where, who confirmed it, and optional photo or signature.
CREATE TABLE deliveries (
    order_id           bigint      PRIMARY KEY REFERENCES orders (id),
    delivered_at       timestamptz NOT NULL,
    lat                double precision,
    lon                double precision,
    confirmed_by       text        NOT NULL,  -- the driver, or gateway/device of a delivery scan
    photo_ref          text,
    signature_ref      text,
    evidence_event_id  uuid,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);
