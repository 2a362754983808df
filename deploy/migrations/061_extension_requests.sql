-- The console's pending extension requests (services/district/queues/console.py,
-- EXTENSION_REQUESTS): the few `extension_requested` events, found without scanning the record.
CREATE INDEX IF NOT EXISTS case_events_extension_requests ON case_events (district_code, at)
    WHERE type = 'extension_requested';
