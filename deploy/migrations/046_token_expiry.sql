-- API tokens expire (`cityops token create --expires-in`, default CITYOPS_TOKEN_EXPIRES_IN;
-- NULL: never) and record when they were last used (written at most once a minute a token).
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;
