CREATE TABLE chunks (
    request_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    txt        TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
ALTER TABLE records ADD COLUMN finalized INTEGER NOT NULL DEFAULT 0;
