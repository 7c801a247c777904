-- When a request began executing (ms): set as it is claimed, just before it is sent. History
-- reports it as `att`, a running poll as `executed`.
ALTER TABLE records ADD COLUMN started INTEGER;
