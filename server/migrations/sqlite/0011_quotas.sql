-- Daily quotas: requests a day per caller and in total, per key (NULL: none); and what each
-- counter has counted, per UTC day (kept across restarts; on PostgreSQL shared by every instance).
ALTER TABLE keys ADD COLUMN daily_per_caller INTEGER;
ALTER TABLE keys ADD COLUMN daily_total INTEGER;
CREATE TABLE quota_days (
    counter TEXT NOT NULL,
    day     BIGINT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (counter, day)
);
