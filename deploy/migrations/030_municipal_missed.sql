-- A task is never due before it is dispatched: once the municipal due time has passed, new
-- tasks get the policy's deadlines and the case records when it missed the municipal one.
ALTER TABLE cases ADD COLUMN municipal_missed_at timestamptz;
ALTER TYPE cases_row ADD ATTRIBUTE municipal_missed_at timestamptz;
-- the queue view counts the open cases that missed it
CREATE INDEX cases_municipal_missed ON cases (district_code, state)
    WHERE municipal_missed_at IS NOT NULL;
