CREATE TABLE "runner_meta" ("key" TEXT NOT NULL PRIMARY KEY, "value" TEXT NOT NULL);
CREATE TABLE "runner_job" ("id" TEXT NOT NULL PRIMARY KEY, "task" TEXT NOT NULL, "queue" TEXT NOT NULL DEFAULT 'default', "priority" INTEGER NOT NULL DEFAULT 0, "state" TEXT NOT NULL, "data" BLOB NOT NULL, "args" TEXT, "attempt" INTEGER NOT NULL DEFAULT 0, "max_attempts" INTEGER NOT NULL DEFAULT 1, "run_at" REAL NOT NULL, "created_at" REAL NOT NULL, "started_at" REAL, "finished_at" REAL, "lease_owner" TEXT, "lease_expires_at" REAL, "crashes" INTEGER NOT NULL DEFAULT 0, "failures" INTEGER NOT NULL DEFAULT 0, "first_failed_at" REAL, "last_failed_at" REAL, "error_type" TEXT, "error_message" TEXT, "last_error" TEXT, "reason" TEXT, "progress_done" REAL, "progress_total" REAL, "progress_message" TEXT, "unique_key" TEXT, "event_id" TEXT, "schedule" TEXT, "concurrency_key" TEXT, CHECK (state IN ('available','scheduled','retrying','executing','completed','dead','cancelled')));
CREATE TABLE "runner_job_error" ("id" INTEGER NOT NULL PRIMARY KEY, "job_id" TEXT NOT NULL, "attempt" INTEGER NOT NULL, "kind" TEXT NOT NULL, "error_type" TEXT, "message" TEXT, "traceback" TEXT, "worker" TEXT, "started_at" REAL, "failed_at" REAL NOT NULL);
CREATE TABLE "runner_kv" ("key" TEXT NOT NULL PRIMARY KEY, "value" BLOB NOT NULL, "expires_at" REAL);
CREATE TABLE "runner_counter" ("key" TEXT NOT NULL PRIMARY KEY, "value" INTEGER NOT NULL DEFAULT 0);
CREATE TABLE "runner_flow" ("key" TEXT NOT NULL PRIMARY KEY, "value" REAL NOT NULL, "updated_at" REAL NOT NULL);
CREATE TABLE "runner_schedule" ("name" TEXT NOT NULL PRIMARY KEY, "task" TEXT NOT NULL, "expression" TEXT NOT NULL, "tz" TEXT NOT NULL, "misfire" TEXT NOT NULL, "overlap" TEXT NOT NULL, "next_fire_at" REAL, "last_slot_at" REAL, "last_fired_at" REAL, "last_lag" REAL, "last_job_id" TEXT, "enabled" INTEGER NOT NULL DEFAULT 1, "paused" INTEGER NOT NULL DEFAULT 0, "orphaned" INTEGER NOT NULL DEFAULT 0, "skip_next" INTEGER NOT NULL DEFAULT 0, "fired" INTEGER NOT NULL DEFAULT 0, "skipped" INTEGER NOT NULL DEFAULT 0, "last_skip_at" REAL, "last_skip_reason" TEXT, "created_at" REAL NOT NULL, "updated_at" REAL NOT NULL);
CREATE TABLE "runner_schedule_run" ("id" INTEGER NOT NULL PRIMARY KEY, "schedule" TEXT NOT NULL, "slot" REAL NOT NULL, "manual" INTEGER NOT NULL DEFAULT 0, "fired_at" REAL NOT NULL, "job_id" TEXT, "outcome" TEXT NOT NULL, UNIQUE (schedule, slot, manual));
CREATE TABLE "runner_worker" ("id" TEXT NOT NULL PRIMARY KEY, "host" TEXT NOT NULL, "pid" INTEGER NOT NULL, "started_at" REAL NOT NULL, "heartbeat_at" REAL NOT NULL, "stopped_at" REAL, "state" TEXT NOT NULL DEFAULT 'running', "concurrency" INTEGER NOT NULL DEFAULT 0, "queues" TEXT, "rss_bytes" INTEGER, "cpu_percent" REAL, "running" INTEGER NOT NULL DEFAULT 0, "processed" INTEGER NOT NULL DEFAULT 0, "status" TEXT);
CREATE TABLE "runner_event" ("id" TEXT NOT NULL PRIMARY KEY, "name" TEXT NOT NULL, "data" TEXT NOT NULL, "key" TEXT, "emitted_at" REAL NOT NULL, "source" TEXT, "status" TEXT NOT NULL DEFAULT 'pending', "dispatched_at" REAL, "dispatch_job" TEXT, "handlers" INTEGER NOT NULL DEFAULT 0, "deliveries" INTEGER NOT NULL DEFAULT 0, CHECK (status IN ('pending','dispatched','unhandled')));
CREATE TABLE "runner_log" ("id" INTEGER NOT NULL PRIMARY KEY, "created_at" REAL NOT NULL, "level" INTEGER NOT NULL, "logger" TEXT NOT NULL, "message" TEXT NOT NULL, "job_id" TEXT, "task" TEXT, "worker" TEXT);
CREATE TABLE "runner_job_total" ("task" TEXT NOT NULL, "queue" TEXT NOT NULL, "enqueued" INTEGER NOT NULL DEFAULT 0, "completed" INTEGER NOT NULL DEFAULT 0, "failed" INTEGER NOT NULL DEFAULT 0, "retried" INTEGER NOT NULL DEFAULT 0, "dead" INTEGER NOT NULL DEFAULT 0, "cancelled" INTEGER NOT NULL DEFAULT 0, "duration_sum" REAL NOT NULL DEFAULT 0, "le0" INTEGER NOT NULL DEFAULT 0, "le1" INTEGER NOT NULL DEFAULT 0, "le2" INTEGER NOT NULL DEFAULT 0, "le3" INTEGER NOT NULL DEFAULT 0, "le4" INTEGER NOT NULL DEFAULT 0, "le5" INTEGER NOT NULL DEFAULT 0, "le6" INTEGER NOT NULL DEFAULT 0, "le7" INTEGER NOT NULL DEFAULT 0, "le8" INTEGER NOT NULL DEFAULT 0, "le9" INTEGER NOT NULL DEFAULT 0, "le10" INTEGER NOT NULL DEFAULT 0, "le11" INTEGER NOT NULL DEFAULT 0, "le12" INTEGER NOT NULL DEFAULT 0, "le13" INTEGER NOT NULL DEFAULT 0, "le14" INTEGER NOT NULL DEFAULT 0, "waiting" INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("task", "queue")) WITHOUT ROWID;
CREATE TABLE "runner_lease" ("name" TEXT NOT NULL PRIMARY KEY, "owner" TEXT NOT NULL, "expires_at" REAL NOT NULL);
CREATE TABLE "runner_pause" ("kind" TEXT NOT NULL, "name" TEXT NOT NULL, "paused" INTEGER NOT NULL DEFAULT 1, "changed_at" REAL NOT NULL, "changed_by" TEXT, PRIMARY KEY ("kind", "name"), CHECK (kind IN ('queue','task')));
CREATE TABLE "runner_cancel" ("job_id" TEXT NOT NULL PRIMARY KEY, "attempt" INTEGER NOT NULL, "requested_at" REAL NOT NULL, "requested_by" TEXT NOT NULL);
CREATE TABLE "runner_queue_total" ("queue" TEXT NOT NULL PRIMARY KEY, "rejected" INTEGER NOT NULL DEFAULT 0, "dropped" INTEGER NOT NULL DEFAULT 0);
CREATE INDEX runner_job_claim ON runner_job
        (priority DESC, run_at) WHERE state IN ('available','scheduled','retrying');
CREATE INDEX runner_job_suspect ON runner_job
        (priority DESC, run_at) WHERE crashes > 0 AND state IN ('available','scheduled','retrying');
CREATE INDEX runner_job_queue_waiting ON runner_job
        (queue, run_at) WHERE state IN ('available','scheduled','retrying');
CREATE INDEX runner_job_queue_claim ON runner_job
        (queue, priority DESC, run_at) WHERE state IN ('available','scheduled','retrying');
CREATE INDEX runner_job_lease ON runner_job
        (lease_expires_at) WHERE state = 'executing';
CREATE INDEX runner_job_state_created ON runner_job (state, created_at);
CREATE INDEX runner_job_task ON runner_job (task, created_at);
CREATE INDEX runner_job_finished ON runner_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX runner_job_failure ON runner_job
        (error_type, error_message, state, task, last_failed_at)
        WHERE state IN ('retrying','dead');
CREATE INDEX runner_job_unique_key ON runner_job (unique_key, created_at) WHERE unique_key IS NOT NULL;
CREATE INDEX runner_job_dispatch_waiting ON runner_job (run_at) WHERE task = 'runner.events.dispatch' AND state = 'available';
CREATE INDEX runner_job_event ON runner_job (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX runner_job_error_job ON runner_job_error (job_id, attempt);
CREATE INDEX runner_job_error_failed ON runner_job_error (failed_at);
CREATE INDEX runner_schedule_due ON runner_schedule (next_fire_at)
        WHERE enabled = 1 AND paused = 0 AND orphaned = 0;
CREATE INDEX runner_schedule_run_fired ON runner_schedule_run (fired_at);
CREATE INDEX runner_job_schedule ON runner_job (schedule, state) WHERE schedule IS NOT NULL;
CREATE INDEX runner_event_emitted ON runner_event (emitted_at);
CREATE INDEX runner_event_pending ON runner_event (emitted_at) WHERE status = 'pending';
CREATE INDEX runner_event_unhandled ON runner_event (emitted_at) WHERE status = 'unhandled';
CREATE INDEX runner_event_key ON runner_event (key, emitted_at) WHERE key IS NOT NULL;
CREATE INDEX runner_log_job ON runner_log (job_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX runner_log_created ON runner_log (created_at);
CREATE VIEW runner_queue AS
        SELECT queue, waiting FROM runner_job_total WHERE task = '';
CREATE TRIGGER runner_job_error_counted AFTER INSERT ON runner_job_error
        BEGIN
        INSERT INTO runner_job_total (task, queue, failed)
        SELECT task, queue, 1 FROM runner_job WHERE id = new.job_id
        ON CONFLICT (task, queue) DO UPDATE SET failed = failed + 1;
        END;
CREATE TRIGGER runner_job_waiting_delete AFTER DELETE ON runner_job
        WHEN OLD.state IN ('available','scheduled','retrying') BEGIN
        UPDATE runner_job_total SET waiting = waiting - 1
            WHERE task = '' AND queue = OLD.queue; END;
CREATE TRIGGER runner_job_waiting_leave AFTER UPDATE OF state, queue
        ON runner_job WHEN OLD.state IN ('available','scheduled','retrying')
        AND (NEW.state NOT IN ('available','scheduled','retrying') OR NEW.queue IS NOT OLD.queue) BEGIN
        UPDATE runner_job_total SET waiting = waiting - 1
            WHERE task = '' AND queue = OLD.queue; END;
CREATE TRIGGER runner_job_waiting_enter AFTER UPDATE OF state, queue
        ON runner_job WHEN NEW.state IN ('available','scheduled','retrying')
        AND (OLD.state NOT IN ('available','scheduled','retrying') OR NEW.queue IS NOT OLD.queue) BEGIN
        INSERT INTO runner_job_total (task, queue, waiting)
            VALUES ('', NEW.queue, 1)
            ON CONFLICT (task, queue) DO UPDATE SET waiting = waiting + 1; END;
INSERT INTO runner_meta (key, value) VALUES ('schema', '3');
