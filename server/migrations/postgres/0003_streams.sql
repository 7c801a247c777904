CREATE TABLE chunks (
    request_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    txt        TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
ALTER TABLE records ADD COLUMN finalized BOOLEAN NOT NULL DEFAULT FALSE;
