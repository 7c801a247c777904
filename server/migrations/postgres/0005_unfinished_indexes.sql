-- Status and queue indexes over what can still change: a request enters the status indexes when
-- it arrives and leaves them when it ends, and one sent outside a queue is in no queue index. A
-- finished request then costs no index writes for its status, and these indexes stay as small
-- as the work in flight. (The statements that use them name the same conditions:
-- server/src/store/sql.rs.)
DROP INDEX records_by_status;
DROP INDEX records_by_queue;
DROP INDEX records_by_queue_name;
CREATE INDEX records_pending ON records (seq) WHERE status = 'pending';
CREATE INDEX records_running ON records (lease_until) WHERE status = 'running';
CREATE INDEX records_by_queue ON records (queue_key, status, seq) WHERE queue_key IS NOT NULL;
CREATE INDEX records_by_queue_name ON records (service, queue, status) WHERE queue IS NOT NULL;
