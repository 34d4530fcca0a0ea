-- Time series of what gateways publish. The key on event_id makes a redelivered event a no-op.
-- depends:

CREATE TABLE positions (
    time         timestamptz      NOT NULL,  -- the GNSS fix time (device time)
    event_id     uuid             NOT NULL,
    site         text             NOT NULL,
    gateway      text             NOT NULL,
    device       text             NOT NULL,
    seq          bigint           NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    speed_mps    real,
    heading_deg  real,
    fix_quality  smallint         NOT NULL,
    hdop         real,
    satellites   smallint,
    altitude_m   real,
    received_at  timestamptz      NOT NULL,  -- when the gateway read it
    ingested_at  timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT positions_event_id_key PRIMARY KEY (event_id)
);
CREATE INDEX positions_time_brin ON positions USING brin (time);
CREATE INDEX positions_device_time ON positions (gateway, device, time DESC);

CREATE TABLE scans (
    time         timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    site         text        NOT NULL,
    gateway      text        NOT NULL,
    device       text        NOT NULL,
    seq          bigint      NOT NULL,
    code         text        NOT NULL,
    code_kind    text        NOT NULL,
    symbology    text,
    antenna      integer,
    rssi_dbm     real,
    read_count   integer     NOT NULL,
    door         text,
    station      text,
    stage        text,
    received_at  timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scans_event_id_key PRIMARY KEY (event_id)
);
CREATE INDEX scans_time_brin ON scans USING brin (time);
CREATE INDEX scans_code ON scans (code, time DESC);

CREATE TABLE device_status (
    time         timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    site         text        NOT NULL,
    gateway      text        NOT NULL,
    device       text        NOT NULL,
    seq          bigint      NOT NULL,
    state        text        NOT NULL,
    detail       text,
    counters     jsonb       NOT NULL DEFAULT '{}',
    received_at  timestamptz NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT device_status_event_id_key PRIMARY KEY (event_id)
);
CREATE INDEX device_status_time_brin ON device_status USING brin (time);
CREATE INDEX device_status_device_time ON device_status (gateway, device, time DESC);

-- Whatever ingest could not accept, kept whole with the reason, for a person to read.
CREATE TABLE quarantine (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    topic        text        NOT NULL,
    reason       text        NOT NULL,
    event_index  integer,
    payload      bytea       NOT NULL,
    resolved_at  timestamptz,
    resolved_by  text
);
CREATE INDEX quarantine_open ON quarantine (quarantined_at DESC) WHERE resolved_at IS NULL;
