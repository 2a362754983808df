-- An anonymous caller's name is never kept (issue 15): mask what earlier versions stored.
UPDATE cases SET caller_name = '匿名' WHERE caller_anonymous AND caller_name IS DISTINCT FROM '匿名';
UPDATE case_reporters
   SET message = jsonb_set(message, '{caller,name}', to_jsonb('匿名'::text))
 WHERE (message->'caller'->>'anonymous')::boolean
   AND message->'caller'->>'name' IS DISTINCT FROM '匿名';
