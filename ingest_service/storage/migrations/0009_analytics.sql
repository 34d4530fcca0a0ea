-- Analytics (docs/analytics.md) reads history by time range: these indexes let its reports
-- find a range's order moves, exceptions and accepted door scans without reading the tables.
-- No continuous aggregates: the reports join regular tables and pair fixes with window
-- functions, which TimescaleDB's continuous aggregates do not allow.
-- depends: 0008_inbound

CREATE INDEX order_events_moves_at ON order_events (at) WHERE kind IN ('created', 'state');
CREATE INDEX exceptions_opened_at ON exceptions (opened_at);
CREATE INDEX scan_outcomes_accepted_at ON scan_outcomes (decided_at)
    WHERE verdict = 'accepted' AND door IS NOT NULL;
CREATE INDEX trip_stops_arrived_at ON trip_stops (arrived_at) WHERE arrived_at IS NOT NULL;
