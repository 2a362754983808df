-- A stage applies only where it is owed: first contact (先行联系) only for 12345 lead tasks whose
-- caller asked for a call-back. Other tasks have no first-contact deadline.
ALTER TABLE tasks ALTER COLUMN first_contact_by DROP NOT NULL;
