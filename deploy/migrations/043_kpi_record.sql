-- KPIs as the centres read them (issue 15):
-- * "on time" and "due to close" are judged against the resolve deadline a case was first
--   given, moved only by an approved extension (and by the time it was parked, which stops
--   the clock): cases.due_by. A reopen, a re-dispatch or supervision gives the unit a new
--   deadline to work to (cases.resolve_by) but does not restart the case's clock.
-- * the period reads of the trend and the ranking are range scans over these indexes.
ALTER TABLE cases ADD COLUMN due_by timestamptz;
ALTER TYPE cases_row ADD ATTRIBUTE due_by timestamptz;

-- The record so far: the first lead dispatch's resolve deadline, moved by what each approved
-- extension of a lead task granted and each unparking of a lead task gave back (the events'
-- deadlines_before -> deadlines_after), as the code moves it.
UPDATE cases c SET due_by = first.resolve_by + coalesce(moved.total, interval '0')
  FROM (SELECT DISTINCT ON (e.case_no) e.case_no,
               (e.data->'deadlines_after'->>'resolve_by')::timestamptz AS resolve_by
          FROM case_events e
         WHERE e.data ? 'deadlines_after' AND e.type IN ('dispatched', 'joint_dispatched')
         ORDER BY e.case_no, e.seq) first
  LEFT JOIN (SELECT x.case_no,
                    sum(greatest((x.data->'deadlines_after'->>'resolve_by')::timestamptz
                        - (x.data->'deadlines_before'->>'resolve_by')::timestamptz,
                        interval '0')) AS total
               FROM case_events x
               LEFT JOIN tasks t ON t.task_id = x.data->>'task_id'
              WHERE (x.type = 'extension_approved' AND t.role = 'lead')
                 OR (x.type = 'unparked' AND x.data ? 'deadlines_after')
              GROUP BY x.case_no) moved ON moved.case_no = first.case_no
 WHERE c.case_no = first.case_no;

CREATE INDEX IF NOT EXISTS cases_due_by ON cases (district_code, due_by);
-- road-chief reports of a period (自处置率) and the per-case "handled on the spot" mark
CREATE INDEX IF NOT EXISTS cases_roadchief_opened ON cases (district_code, opened_at)
    WHERE source = 'roadchief';
CREATE INDEX IF NOT EXISTS case_events_self_handled ON case_events (case_no)
    WHERE type = 'self_handled';
-- explicit accepts (按时签收率 counts only these) and resolutions (实际解决率 reads the
-- unit's outcome of the resolution a follow-up judged), per case
CREATE INDEX IF NOT EXISTS case_events_accepts ON case_events (case_no)
    WHERE type = 'accepted';

-- closures so far judged by that deadline, as new closures are
UPDATE cases SET closed_on_time = resolved_at <= due_by
 WHERE state = 'closed' AND due_by IS NOT NULL AND resolved_at IS NOT NULL;
