-- Token budgets: tokens a UTC day per caller and in total, per key (NULL: none), read from each
-- answer's usage. A day's counter row keeps its tokens beside its requests; a record keeps who
-- it was counted as (a JSON list), so that tokens read when it ends count for the same callers.
ALTER TABLE keys ADD COLUMN daily_tokens_per_caller BIGINT;
ALTER TABLE keys ADD COLUMN daily_tokens_total BIGINT;
ALTER TABLE quota_days ADD COLUMN tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN counted_as TEXT;
