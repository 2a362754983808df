-- The street desk's live view (services/street/desk_live.py): every change to a desk task is
-- announced on the channel `cityops_street_tasks` when its transaction commits, so open desks
-- re-read the task at once instead of polling. The payload names the unit and the task only.

CREATE FUNCTION street.notify_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cityops_street_tasks',
                      json_build_object('unit_code', NEW.unit_code, 'task_id', NEW.task_id,
                                        'case_no', NEW.case_no, 'state', NEW.state)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER street_tasks_notify AFTER INSERT OR UPDATE ON street.tasks
    FOR EACH ROW EXECUTE FUNCTION street.notify_task();
