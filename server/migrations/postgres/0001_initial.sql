CREATE TABLE keys (
    service         TEXT NOT NULL,
    name            TEXT NOT NULL,
    secret          BYTEA NOT NULL,
    locked          BOOLEAN NOT NULL,
    destinations    TEXT NOT NULL,
    positions       TEXT NOT NULL DEFAULT '[]',
    rate_per_caller INTEGER,
    rate_total      INTEGER,
    created         BIGINT NOT NULL,
    updated         BIGINT NOT NULL,
    PRIMARY KEY (service, name)
);
CREATE TABLE services (
    service      TEXT PRIMARY KEY,
    cors_origins TEXT NOT NULL,
    updated      BIGINT NOT NULL
);
CREATE TABLE records (
    seq           BIGSERIAL PRIMARY KEY,
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
    truncated     BOOLEAN NOT NULL DEFAULT FALSE,
    error_code    TEXT,
    error_message TEXT,
    created       BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    expires       BIGINT NOT NULL
);
CREATE INDEX records_by_v2 ON records (service, caller, key_v2, seq);
CREATE INDEX records_by_v1 ON records (service, caller, key_v1, seq);
CREATE INDEX records_by_status ON records (status, seq);
CREATE INDEX records_by_queue ON records (queue_key, status, seq);
CREATE INDEX records_by_queue_name ON records (service, queue, status);
CREATE INDEX records_by_expiry ON records (expires);
