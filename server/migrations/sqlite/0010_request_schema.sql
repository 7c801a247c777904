-- A key's request rules: a JSON Schema each request sent with it must satisfy (NULL: none).
ALTER TABLE keys ADD COLUMN request_schema TEXT;
