-- Who changed a routing rule: beside the actor the operator states, the API token the change
-- came with (cases record it in each event's data instead: case_events.data->>'token_id').
ALTER TABLE routing_rules ADD COLUMN token_id text;
