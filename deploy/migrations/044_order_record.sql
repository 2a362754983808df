-- Per 12345 order (a case's own and each order merged into it, 并案), what the KPIs read of it:
-- first contact (whether and when, against its deadline), the unit's last resolution and its
-- outcome (solved 解决 / explained 解释说明; none recorded: solved), and the order's last
-- follow-up (回访): its rating and whether the citizen said resolved. A view over the record
-- (tasks, case_events, case_reporters), so it cannot drift from what the KPIs count.
CREATE VIEW order_record AS
WITH orders AS (
    SELECT c.case_no, c.district_code, c.source_ref AS order_no
      FROM cases c WHERE c.source = 'hotline12345'
    UNION
    SELECT r.case_no, c.district_code, r.source_ref
      FROM case_reporters r JOIN cases c ON c.case_no = r.case_no
     WHERE r.source = 'hotline12345'
)
SELECT o.order_no, o.case_no, o.district_code,
       fc.contacted_at IS NOT NULL AS first_contact,
       fc.contacted_at AS first_contact_at,
       fc.contacted_at <= fc.first_contact_by AS first_contact_on_time,
       res.outcome, res.at AS resolved_at,
       fu.satisfaction, fu.resolved AS citizen_resolved, fu.at AS followed_up_at
  FROM orders o
  LEFT JOIN LATERAL (
      SELECT t.contacted_at, t.first_contact_by FROM tasks t
       WHERE t.case_no = o.case_no AND t.role = 'lead' AND t.contacted_at IS NOT NULL
       ORDER BY t.contacted_at LIMIT 1) fc ON true
  LEFT JOIN LATERAL (
      SELECT coalesce(e.data->>'outcome', 'solved') AS outcome, e.at FROM case_events e
       WHERE e.case_no = o.case_no AND e.to_state = 'resolved'
         AND e.from_state IS DISTINCT FROM e.to_state
       ORDER BY e.seq DESC LIMIT 1) res ON true
  LEFT JOIN LATERAL (
      SELECT e.data->>'satisfaction' AS satisfaction, (e.data->>'resolved')::bool AS resolved,
             e.at
        FROM case_events e
       WHERE e.case_no = o.case_no AND e.type = 'followed_up'
         AND coalesce(e.data->>'order_no', o.order_no) = o.order_no
       ORDER BY e.seq DESC LIMIT 1) fu ON true;
