ALTER TABLE records ADD COLUMN lease_until BIGINT;
CREATE TABLE rate_windows (
    counter TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (counter, window_start)
);
