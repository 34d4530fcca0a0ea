-- Orders and what moves them: customers, products and stock, packages, vehicles, trips and
-- dock doors, the history of every change with its evidence, scans matched (or not), and
-- exceptions. The rules live in the pure `orders` package; these tables keep their results.
-- depends: 0002_auth

CREATE TABLE customers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref           text        NOT NULL UNIQUE,  -- the customer's number in the seller's books
    name          text        NOT NULL,
    email         text,
    phone         text,
    notify_email  boolean     NOT NULL DEFAULT true,
    notify_sms    boolean     NOT NULL DEFAULT false,
    webhook_url   text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_name ON customers (lower(name) text_pattern_ops);

CREATE TABLE products (
    sku                  text          PRIMARY KEY,
    gtin                 char(14)      UNIQUE,
    name                 text          NOT NULL,
    unit_price           numeric(12,2) NOT NULL DEFAULT 0 CHECK (unit_price >= 0),
    low_stock_threshold  integer       NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    lead_time_days       real          NOT NULL DEFAULT 2 CHECK (lead_time_days >= 0),
    active               boolean       NOT NULL DEFAULT true
);

CREATE TABLE stock (
    sku       text    NOT NULL REFERENCES products (sku),
    location  text    NOT NULL,
    quantity  integer NOT NULL,  -- may go negative when the floor picked more than we knew of
    PRIMARY KEY (sku, location)
);

-- Every change of stock, so usage per day and "who took it" can be answered.
CREATE TABLE stock_movements (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    sku       text        NOT NULL REFERENCES products (sku),
    location  text        NOT NULL,
    delta     integer     NOT NULL,
    reason    text        NOT NULL CHECK (reason IN ('pick', 'receipt', 'adjustment')),
    event_id  uuid,       -- the scan that moved it, when a scan did
    order_id  bigint,
    actor     text        NOT NULL
);
CREATE UNIQUE INDEX stock_movements_once_per_scan ON stock_movements (event_id, sku)
    WHERE event_id IS NOT NULL;
CREATE INDEX stock_movements_sku_at ON stock_movements (sku, at);

CREATE TABLE vehicles (
    id      text    PRIMARY KEY,
    name    text    NOT NULL,
    plate   text,
    active  boolean NOT NULL DEFAULT true
);

CREATE TABLE trips (
    id           text        PRIMARY KEY,
    vehicle_id   text        REFERENCES vehicles (id),
    origin_site  text        NOT NULL,
    state        text        NOT NULL DEFAULT 'planned'
                     CHECK (state IN ('planned', 'loading', 'departed', 'completed', 'cancelled')),
    departed_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Which trip a dispatch door is loading now (none: packages scanned there are refused).
CREATE TABLE dock_doors (
    site         text        NOT NULL,
    door         text        NOT NULL,
    trip_id      text        REFERENCES trips (id),
    assigned_at  timestamptz,
    assigned_by  text,
    PRIMARY KEY (site, door)
);

CREATE TABLE orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number          text        NOT NULL UNIQUE,
    type            text        NOT NULL DEFAULT 'sales'
                        CHECK (type IN ('sales', 'transfer', 'return', 'sample')),
    customer_id     bigint      NOT NULL REFERENCES customers (id),
    state           text        NOT NULL DEFAULT 'created' CHECK (state IN
                        ('created', 'picking', 'picked', 'packed', 'loaded', 'in_transit',
                         'arriving', 'arrived', 'delivered', 'cancelled')),
    priority        smallint    NOT NULL DEFAULT 0,
    notes           text,
    dest_address    text        NOT NULL,
    dest_lat        double precision CHECK (dest_lat BETWEEN -90 AND 90),
    dest_lon        double precision CHECK (dest_lon BETWEEN -180 AND 180),
    dest_radius_m   real        CHECK (dest_radius_m > 0),  -- the delivery fence's radius
    window_start    timestamptz,
    window_end      timestamptz,
    trip_id         text        REFERENCES trips (id),  -- the trip it is planned on
    origin_site     text        NOT NULL DEFAULT 'wh1',
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer     NOT NULL DEFAULT 1,
    CHECK (window_end IS NULL OR window_start IS NULL OR window_end >= window_start),
    CHECK ((dest_lat IS NULL) = (dest_lon IS NULL))
);
CREATE INDEX orders_state ON orders (state);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_trip ON orders (trip_id) WHERE trip_id IS NOT NULL;
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_number_search ON orders (lower(number) text_pattern_ops);

CREATE TABLE order_lines (
    order_id    bigint        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     integer       NOT NULL CHECK (line_no > 0),
    sku         text          NOT NULL REFERENCES products (sku),
    quantity    integer       NOT NULL CHECK (quantity > 0),
    unit_price  numeric(12,2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_sku ON order_lines (sku);

-- Handling units: an SSCC always, an EPC when the package is tagged.
CREATE TABLE packages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint      NOT NULL REFERENCES orders (id),
    sscc         char(18)    NOT NULL UNIQUE,
    epc          text        UNIQUE,  -- upper-case hex, as readers report it
    state        text        NOT NULL DEFAULT 'created'
                     CHECK (state IN ('created', 'picked', 'packed', 'loaded', 'delivered')),
    loaded_trip  text        REFERENCES trips (id),
    loaded_at    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX packages_order ON packages (order_id);
CREATE INDEX packages_loaded_trip ON packages (loaded_trip) WHERE loaded_trip IS NOT NULL;

-- The next SSCC serial reference per company prefix (see orders/sscc).
CREATE TABLE sscc_serials (
    company_prefix  text   PRIMARY KEY,
    next_serial     bigint NOT NULL
);

-- Every change to an order, by whom, and on what evidence.
CREATE TABLE order_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id           bigint      NOT NULL REFERENCES orders (id),
    package_id         bigint      REFERENCES packages (id),
    at                 timestamptz NOT NULL DEFAULT now(),
    kind               text        NOT NULL CHECK (kind IN
                           ('created', 'state', 'package_state', 'changed', 'note', 'loaded')),
    from_state         text,
    to_state           text,
    trigger            text,
    evidence_event_id  uuid,  -- the scan or position event that proved it
    read_point         jsonb,
    actor              text        NOT NULL,  -- a username, or gateway/device, or rule name
    detail             jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX order_events_order ON order_events (order_id, id);

-- What each stored scan was matched to, and the verdict the dock was given. One row per scan:
-- a redelivered scan finds its row and is not judged twice.
CREATE TABLE scan_outcomes (
    event_id    uuid        PRIMARY KEY,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    site        text        NOT NULL,
    gateway     text        NOT NULL,
    door        text,
    station     text,
    match_kind  text        NOT NULL CHECK (match_kind IN
                    ('package', 'order', 'product', 'unmatched', 'invalid', 'error')),
    order_id    bigint,
    package_id  bigint,
    sku         text,
    verdict     text        NOT NULL,
    message     text        NOT NULL DEFAULT ''
);
CREATE INDEX scan_outcomes_door ON scan_outcomes (site, door, decided_at DESC);

-- Codes no order, package or product claims: kept for a dispatcher to assign or dismiss.
CREATE TABLE unmatched_scans (
    event_id     uuid        PRIMARY KEY,
    seen_at      timestamptz NOT NULL,
    site         text        NOT NULL,
    gateway      text        NOT NULL,
    device       text        NOT NULL,
    code         text        NOT NULL,
    code_kind    text        NOT NULL,
    symbology    text,
    door         text,
    station      text,
    stage        text,
    reason       text        NOT NULL,
    status       text        NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'assigned', 'dismissed')),
    order_id     bigint      REFERENCES orders (id),
    resolved_by  text,
    resolved_at  timestamptz,
    note         text
);
CREATE INDEX unmatched_scans_open ON unmatched_scans (seen_at) WHERE status = 'open';

CREATE TABLE exceptions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN
                           ('delay', 'damage', 'wrong_load', 'short_load', 'unmatched_scan',
                            'stale_tracker', 'oversell', 'low_stock', 'other')),
    status             text        NOT NULL DEFAULT 'open'
                           CHECK (status IN ('open', 'acknowledged', 'resolved')),
    summary            text        NOT NULL,
    order_id           bigint      REFERENCES orders (id),
    package_id         bigint      REFERENCES packages (id),
    vehicle_id         text        REFERENCES vehicles (id),
    trip_id            text        REFERENCES trips (id),
    sku                text        REFERENCES products (sku),
    evidence_event_id  uuid,
    opened_at          timestamptz NOT NULL DEFAULT now(),
    opened_by          text        NOT NULL,  -- a username, or "rule:<name>"
    owner              text,
    acknowledged_at    timestamptz,
    resolved_at        timestamptz,
    -- A rule names what it raised (e.g. "wrong_load:<scan event id>") so evidence seen twice
    -- raises one exception; exceptions raised by hand have none.
    dedup_key          text        UNIQUE
);
CREATE INDEX exceptions_open ON exceptions (kind, opened_at) WHERE status <> 'resolved';
CREATE INDEX exceptions_order ON exceptions (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE exception_notes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exception_id  bigint      NOT NULL REFERENCES exceptions (id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    author        text        NOT NULL,
    note          text        NOT NULL,
    status_to     text  -- set when the note came with a status change
);
CREATE INDEX exception_notes_exception ON exception_notes (exception_id, id);
