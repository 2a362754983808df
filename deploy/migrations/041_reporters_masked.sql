-- Personal data in raw inbound copies (issue 15): a merged report's message keeps the caller's
-- phone masked; the number itself is sealed beside it (caller_phone_sealed). Mask what earlier
-- versions kept in clear.
UPDATE case_reporters
   SET message = jsonb_set(message, '{caller,phone}', to_jsonb(caller_phone_masked))
 WHERE caller_phone_masked IS NOT NULL
   AND message->'caller'->>'phone' IS DISTINCT FROM caller_phone_masked;
