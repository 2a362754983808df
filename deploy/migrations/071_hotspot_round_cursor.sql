-- The keys a detection round judges are those of the reports counted since the previous round,
-- found by the counting transaction's id below the round's snapshot horizon (every transaction
-- under it has ended, so none is skipped), instead of a row in hotspot_dirty inserted by the
-- counting and deleted by the round for each key of each report (3 row writes an order).
-- hotspot_dirty stays for the keys an older version left in it; nothing writes it any more.
ALTER TABLE hotspot_reports ADD COLUMN counted_by xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX hotspot_reports_counted ON hotspot_reports (district_code, counted_by);
-- reports counted by transactions below this have been judged (0: none yet)
ALTER TABLE hotspot_meta ADD COLUMN judged_below xid8 NOT NULL DEFAULT '0';
UPDATE hotspot_meta SET judged_below = pg_snapshot_xmin(pg_current_snapshot());
