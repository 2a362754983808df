-- Hotspots and trends (态势感知): reports counted by area × category × hour and day, the
-- hotspots found, and the keys waiting to be judged. Written by services/district/hotspots
-- (the consumer of cityops.case-events and the detection round); thresholds are data in
-- deploy/reference/hotspot_thresholds.toml.

-- Each report (a case opened, or a report merged into one) once: its event id is the
-- idempotency key of the counting. Kept 35 days (the longest window is 30).
CREATE TABLE hotspot_reports (
    event_id      text PRIMARY KEY,
    district_code text NOT NULL,
    case_no       text NOT NULL,
    category_code text NOT NULL,
    street_code   text,
    geo_cell      bigint,
    place         text,
    lon           double precision,
    lat           double precision,
    at            timestamptz NOT NULL
);
CREATE INDEX hotspot_reports_cell ON hotspot_reports (district_code, category_code, geo_cell, at)
    WHERE geo_cell IS NOT NULL;
CREATE INDEX hotspot_reports_street ON hotspot_reports (district_code, category_code, street_code, at);
CREATE INDEX hotspot_reports_place ON hotspot_reports (district_code, category_code, place, at)
    WHERE place IS NOT NULL;
CREATE INDEX hotspot_reports_at ON hotspot_reports (at);

-- The aggregation: reports per area (cell: cases.geo_cell; street: unit code; place) ×
-- category × bucket (hour: UTC hours, kept 3 days; day: Shanghai days, kept for the longest
-- window and its lookback).
CREATE TABLE hotspot_counts (
    district_code text NOT NULL,
    area_kind     text NOT NULL,
    area          text NOT NULL,
    category_code text NOT NULL,
    grain         text NOT NULL,
    bucket        timestamptz NOT NULL,
    n             integer NOT NULL,
    PRIMARY KEY (district_code, area_kind, category_code, area, grain, bucket)
);
-- the peers of a window: every area of a kind and category since a bucket
CREATE INDEX hotspot_counts_window ON hotspot_counts (district_code, area_kind, grain, bucket);

-- Keys that saw reports since the last detection round.
CREATE TABLE hotspot_dirty (
    district_code text NOT NULL,
    kind          text NOT NULL,
    area          text NOT NULL,
    category_code text NOT NULL,
    PRIMARY KEY (district_code, kind, area, category_code)
);

-- When the district began counting: own history is trusted only after `min_history_h` of it.
CREATE TABLE hotspot_meta (
    district_code  text PRIMARY KEY,
    counting_since timestamptz NOT NULL
);

CREATE SEQUENCE hotspot_no_seq;

CREATE TABLE hotspots (
    hotspot_id    text PRIMARY KEY,
    district_code text NOT NULL,
    kind          text NOT NULL,
    area          text NOT NULL,       -- cluster: its block's centre cell; surge: street; repeat: place
    category_code text NOT NULL,
    street_code   text,
    state         text NOT NULL,       -- open | closed
    seq           integer NOT NULL,    -- messages sent about it
    count         integer NOT NULL,
    baseline      double precision NOT NULL,
    score         double precision NOT NULL,
    window_from   timestamptz NOT NULL,
    window_to     timestamptz NOT NULL,
    lon           double precision,
    lat           double precision,
    radius_m      double precision NOT NULL,
    bbox          double precision[],  -- [west, south, east, north] of a cluster's block or a place
    case_nos      text[] NOT NULL,
    opened_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    closed_at     timestamptz
);
CREATE UNIQUE INDEX hotspots_one_open ON hotspots (district_code, kind, area, category_code)
    WHERE state = 'open';
CREATE INDEX hotspots_recent ON hotspots (district_code, opened_at DESC, hotspot_id);
CREATE INDEX hotspots_street ON hotspots (district_code, street_code, opened_at DESC);
