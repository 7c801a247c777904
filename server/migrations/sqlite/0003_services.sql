ALTER TABLE keys ADD COLUMN positions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE keys ADD COLUMN rate_per_caller INTEGER;
ALTER TABLE keys ADD COLUMN rate_total INTEGER;
CREATE TABLE services (
    service      TEXT PRIMARY KEY,
    cors_origins TEXT NOT NULL,
    updated      INTEGER NOT NULL
);
