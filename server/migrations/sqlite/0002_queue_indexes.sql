CREATE INDEX records_by_queue_name ON records (service, queue, status);
CREATE INDEX records_by_expiry ON records (expires);
