CREATE TABLE keys (
    service      TEXT NOT NULL,
    name         TEXT NOT NULL,
    secret       BLOB NOT NULL,
    locked       INTEGER NOT NULL,
    destinations TEXT NOT NULL,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    PRIMARY KEY (service, name)
);
CREATE TABLE records (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    service       TEXT NOT NULL,
    owner         TEXT NOT NULL,
    caller        TEXT NOT NULL,
    key_name      TEXT NOT NULL,
    method        TEXT NOT NULL,
    url           TEXT NOT NULL,
    key_v1        TEXT NOT NULL,
    key_v2        TEXT NOT NULL,
    queue         TEXT,
    queue_key     TEXT,
    request       TEXT NOT NULL,
    request_body  TEXT,
    status        TEXT NOT NULL,
    status_code   INTEGER,
    response_body TEXT,
    truncated     INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    expires       INTEGER NOT NULL
);
CREATE INDEX records_by_v2 ON records (service, caller, key_v2, seq);
CREATE INDEX records_by_v1 ON records (service, caller, key_v1, seq);
CREATE INDEX records_by_status ON records (status, seq);
CREATE INDEX records_by_queue ON records (queue_key, status, seq);
