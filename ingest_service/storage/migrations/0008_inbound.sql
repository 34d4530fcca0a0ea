-- Inbound (docs/inbound.md): suppliers, purchase orders, Advance Shipping Notices with their
-- lines, declared packages, milestones, notes and attachments; reminders; receiving scans
-- reconciled against the ASN at an inbound door, and the receipt.
-- depends: 0007_notify_channels

CREATE TABLE suppliers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref            text        NOT NULL UNIQUE,
    name           text        NOT NULL,
    email          text,
    -- Remind the supplier this many days before a PO's delivery date while no ASN is in.
    reminder_days  integer     NOT NULL DEFAULT 7 CHECK (reminder_days IN (5, 7, 10)),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- A supplier user sees only its own supplier's documents (none without a supplier).
ALTER TABLE users ADD COLUMN supplier_id bigint REFERENCES suppliers (id);

-- The buyer's order to a supplier. sent (to the supplier) → acknowledged (by the supplier);
-- closed once received; cancelled by the buyer.
CREATE TABLE purchase_orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number           text        NOT NULL UNIQUE,
    supplier_id      bigint      NOT NULL REFERENCES suppliers (id),
    site             text        NOT NULL,  -- ship to
    status           text        NOT NULL DEFAULT 'sent'
                         CHECK (status IN ('sent', 'acknowledged', 'closed', 'cancelled')),
    delivery_date    date        NOT NULL,
    comments         text,      -- the buyer's instructions for the ASN
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text
);
CREATE INDEX purchase_orders_supplier ON purchase_orders (supplier_id, status);

CREATE TABLE po_lines (
    po_id          bigint        NOT NULL REFERENCES purchase_orders (id) ON DELETE CASCADE,
    line_no        integer       NOT NULL CHECK (line_no > 0),
    sku            text          NOT NULL REFERENCES products (sku),
    kind           text          NOT NULL DEFAULT 'material' CHECK (kind IN ('material', 'service')),
    quantity       integer       NOT NULL CHECK (quantity > 0),
    unit_price     numeric(12,2) CHECK (unit_price >= 0),
    delivery_date  date,         -- a line's own date, when not the PO's
    PRIMARY KEY (po_id, line_no)
);

-- draft → submitted → received; draft → deleted; draft or submitted → cancelled (a
-- replacement names what it replaces). Shipped quantities count only while not cancelled.
CREATE TABLE asns (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number              text        NOT NULL UNIQUE,
    po_id               bigint      NOT NULL REFERENCES purchase_orders (id),
    supplier_id         bigint      NOT NULL REFERENCES suppliers (id),
    status              text        NOT NULL DEFAULT 'draft'
                            CHECK (status IN ('draft', 'submitted', 'received', 'cancelled')),
    estimated_delivery  date,
    carrier             text,
    tracking_number     text,
    replaces_asn_id     bigint      REFERENCES asns (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text        NOT NULL,
    submitted_at        timestamptz,
    cancelled_at        timestamptz,
    cancel_reason       text,
    received_at         timestamptz
);
CREATE INDEX asns_po ON asns (po_id);
CREATE INDEX asns_supplier ON asns (supplier_id, status);

CREATE TABLE asn_lines (
    asn_id      bigint  NOT NULL REFERENCES asns (id) ON DELETE CASCADE,
    po_id       bigint  NOT NULL,
    po_line_no  integer NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),  -- shipped
    PRIMARY KEY (asn_id, po_line_no),
    FOREIGN KEY (po_id, po_line_no) REFERENCES po_lines (po_id, line_no)
);

-- Cases and pallets the supplier declares, by SSCC (and EPC when tagged): a receiving scan of
-- one receives `quantity` of its line at once.
CREATE TABLE asn_packages (
    asn_id      bigint   NOT NULL REFERENCES asns (id) ON DELETE CASCADE,
    sscc        char(18) NOT NULL,
    epc         text,
    po_line_no  integer  NOT NULL,
    quantity    integer  NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (asn_id, sscc)
);
CREATE INDEX asn_packages_sscc ON asn_packages (sscc);
CREATE INDEX asn_packages_epc ON asn_packages (epc) WHERE epc IS NOT NULL;

CREATE TABLE asn_milestones (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asn_id       bigint      NOT NULL REFERENCES asns (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN
                     ('fabrication', 'ready_to_pick_up', 'port_of_loading', 'port_of_discharge',
                      'customs_clearance', 'transport_to_plant')),
    on_date      date        NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL
);
CREATE INDEX asn_milestones_asn ON asn_milestones (asn_id, on_date);

-- Notes, attachments (kept here, size-capped by the API) and external links.
CREATE TABLE asn_notes (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asn_id             bigint      NOT NULL REFERENCES asns (id) ON DELETE CASCADE,
    kind               text        NOT NULL CHECK (kind IN ('note', 'attachment', 'link')),
    title              text        NOT NULL,
    body               text,
    url                text,
    filename           text,
    content_type       text,
    content            bytea,
    shared_externally  boolean     NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by         text        NOT NULL
);
CREATE INDEX asn_notes_asn ON asn_notes (asn_id, id);

-- Reminders sent: one per PO (the supplier has not submitted an ASN N days before delivery).
CREATE TABLE supplier_reminders (
    po_id    bigint      PRIMARY KEY REFERENCES purchase_orders (id),
    due_on   date        NOT NULL,  -- delivery date minus the supplier's reminder_days
    sent_at  timestamptz NOT NULL DEFAULT now(),
    sent_to  text
);

-- Receiving: an inbound door receives one ASN at a time.
ALTER TABLE dock_doors ADD COLUMN asn_id bigint REFERENCES asns (id);

-- Each receiving scan and what it counted: `expected` against a line, `over` beyond what the
-- line shipped, `unexpected` on no line of the door's ASN. One row per scan (redelivery-safe).
CREATE TABLE asn_receipts (
    event_id    uuid        PRIMARY KEY,
    asn_id      bigint      NOT NULL REFERENCES asns (id),
    at          timestamptz NOT NULL,
    site        text        NOT NULL,
    door        text,
    po_line_no  integer,
    sku         text,
    sscc        text,
    quantity    integer     NOT NULL CHECK (quantity > 0),
    outcome     text        NOT NULL CHECK (outcome IN ('expected', 'over', 'unexpected')),
    actor       text        NOT NULL
);
CREATE INDEX asn_receipts_asn ON asn_receipts (asn_id, po_line_no);

-- The receipt: made when an ASN is fully received, or closed short by a person.
CREATE TABLE receipts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number        text        NOT NULL UNIQUE,
    asn_id        bigint      NOT NULL UNIQUE REFERENCES asns (id),
    status        text        NOT NULL CHECK (status IN ('complete', 'short')),
    lines         jsonb       NOT NULL,  -- per line: ordered, shipped, received
    completed_at  timestamptz NOT NULL DEFAULT now(),
    completed_by  text        NOT NULL
);

ALTER TABLE exceptions ADD COLUMN asn_id bigint REFERENCES asns (id);
ALTER TABLE exceptions DROP CONSTRAINT exceptions_kind_check;
ALTER TABLE exceptions ADD CONSTRAINT exceptions_kind_check CHECK (kind IN
    ('delay', 'damage', 'wrong_load', 'short_load', 'unmatched_scan', 'stale_tracker',
     'oversell', 'low_stock', 'other', 'over_receipt', 'short_receipt', 'unexpected_item'));
CREATE INDEX exceptions_asn ON exceptions (asn_id) WHERE asn_id IS NOT NULL;
