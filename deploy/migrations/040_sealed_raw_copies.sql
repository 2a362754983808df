-- Personal data in raw inbound copies (issue 15): a parked message holding a phone number keeps
-- it masked in `value` and the original sealed with the phone key in `value_sealed`
-- (services/common/crypto.py: the first byte of a sealed value is its key id).
ALTER TABLE parked_messages ADD COLUMN value_sealed bytea;
ALTER TYPE parked_messages_row ADD ATTRIBUTE value_sealed bytea;
