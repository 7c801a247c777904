-- Where a service forwards requests that name no secret (URL prefixes, as a key's
-- destinations): a service without a row forwards none.
CREATE TABLE forwarding (
    service      TEXT PRIMARY KEY,
    destinations TEXT NOT NULL,
    updated      INTEGER NOT NULL
);
