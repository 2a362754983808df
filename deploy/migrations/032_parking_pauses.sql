-- Parking (挂账) stops the clock, unparking resumes it with the time that was left: the case
-- keeps when it was parked, a resumed task where its clock now starts (its warnings fall at
-- 80% of the time actually spent; NULL: at its dispatch).
ALTER TABLE cases ADD COLUMN parked_at timestamptz;
ALTER TYPE cases_row ADD ATTRIBUTE parked_at timestamptz;
ALTER TABLE tasks ADD COLUMN clock_start timestamptz;
ALTER TYPE tasks_row ADD ATTRIBUTE clock_start timestamptz;
