-- The schema as the previous release created it (its DDL statements verbatim).
PRAGMA auto_vacuum=INCREMENTAL;
CREATE TABLE IF NOT EXISTS runner_meta (
        key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runner_job (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        queue TEXT NOT NULL DEFAULT 'default',
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        data BLOB NOT NULL,
        args TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 1,
        run_at REAL NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        lease_owner TEXT,
        lease_expires_at REAL,
        crashes INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        first_failed_at REAL,
        last_failed_at REAL,
        error_type TEXT,
        error_message TEXT,
        last_error TEXT,
        reason TEXT,
        progress_done REAL,
        progress_total REAL,
        progress_message TEXT,
        unique_key TEXT,
        event_id TEXT,
        schedule TEXT,
        CHECK (state IN ('available','scheduled','retrying','executing','completed','dead','cancelled')));
CREATE INDEX IF NOT EXISTS runner_job_claim ON runner_job
        (priority DESC, run_at) WHERE state IN ('available','scheduled','retrying');
CREATE INDEX IF NOT EXISTS runner_job_suspect ON runner_job
        (priority DESC, run_at) WHERE crashes > 0 AND state IN ('available','scheduled','retrying');
CREATE INDEX IF NOT EXISTS runner_job_queue_waiting ON runner_job
        (queue, run_at) WHERE state IN ('available','scheduled','retrying');
CREATE INDEX IF NOT EXISTS runner_job_lease ON runner_job
        (lease_expires_at) WHERE state = 'executing';
CREATE INDEX IF NOT EXISTS runner_job_state_created ON runner_job (state, created_at);
CREATE INDEX IF NOT EXISTS runner_job_task ON runner_job (task, created_at);
CREATE INDEX IF NOT EXISTS runner_job_finished ON runner_job (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS runner_job_failure ON runner_job
        (error_type, error_message, state, task, last_failed_at)
        WHERE state IN ('retrying','dead');
CREATE UNIQUE INDEX IF NOT EXISTS runner_job_unique ON runner_job (unique_key)
        WHERE unique_key IS NOT NULL AND state NOT IN ('completed','dead','cancelled');
CREATE INDEX IF NOT EXISTS runner_job_dispatch_waiting ON runner_job (run_at) WHERE task = 'runner.events.dispatch' AND state = 'available';
CREATE INDEX IF NOT EXISTS runner_job_event ON runner_job (event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS runner_job_error (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        kind TEXT NOT NULL,
        error_type TEXT,
        message TEXT,
        traceback TEXT,
        worker TEXT,
        started_at REAL,
        failed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS runner_job_error_job ON runner_job_error (job_id, attempt);
CREATE INDEX IF NOT EXISTS runner_job_error_failed ON runner_job_error (failed_at);
CREATE TABLE IF NOT EXISTS runner_kv (
        key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS runner_counter (
        key TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS runner_schedule (
        name TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        expression TEXT NOT NULL,
        tz TEXT NOT NULL,
        misfire TEXT NOT NULL,
        overlap TEXT NOT NULL,
        next_fire_at REAL,
        last_slot_at REAL,
        last_fired_at REAL,
        last_lag REAL,
        last_job_id TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        paused INTEGER NOT NULL DEFAULT 0,
        orphaned INTEGER NOT NULL DEFAULT 0,
        skip_next INTEGER NOT NULL DEFAULT 0,
        fired INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        last_skip_at REAL,
        last_skip_reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS runner_schedule_due ON runner_schedule (next_fire_at)
        WHERE enabled = 1 AND paused = 0 AND orphaned = 0;
CREATE TABLE IF NOT EXISTS runner_schedule_run (
        id INTEGER PRIMARY KEY,
        schedule TEXT NOT NULL,
        slot REAL NOT NULL,
        manual INTEGER NOT NULL DEFAULT 0,
        fired_at REAL NOT NULL,
        job_id TEXT,
        outcome TEXT NOT NULL,
        UNIQUE (schedule, slot, manual));
CREATE INDEX IF NOT EXISTS runner_schedule_run_fired ON runner_schedule_run (fired_at);
CREATE INDEX IF NOT EXISTS runner_job_schedule ON runner_job (schedule, state) WHERE schedule IS NOT NULL;
CREATE TABLE IF NOT EXISTS runner_worker (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        stopped_at REAL,
        state TEXT NOT NULL DEFAULT 'running',
        concurrency INTEGER NOT NULL DEFAULT 0,
        queues TEXT,
        rss_bytes INTEGER,
        cpu_percent REAL,
        running INTEGER NOT NULL DEFAULT 0,
        processed INTEGER NOT NULL DEFAULT 0,
        status TEXT);
CREATE TABLE IF NOT EXISTS runner_event (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        key TEXT,
        emitted_at REAL NOT NULL,
        source TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        dispatched_at REAL,
        dispatch_job TEXT,
        handlers INTEGER NOT NULL DEFAULT 0,
        deliveries INTEGER NOT NULL DEFAULT 0,
        CHECK (status IN ('pending','dispatched','unhandled')));
CREATE INDEX IF NOT EXISTS runner_event_emitted ON runner_event (emitted_at);
CREATE INDEX IF NOT EXISTS runner_event_pending ON runner_event (emitted_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS runner_event_unhandled ON runner_event (emitted_at) WHERE status = 'unhandled';
CREATE INDEX IF NOT EXISTS runner_event_key ON runner_event (key, emitted_at) WHERE key IS NOT NULL;
CREATE TABLE IF NOT EXISTS runner_log (
        id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        level INTEGER NOT NULL,
        logger TEXT NOT NULL,
        message TEXT NOT NULL,
        job_id TEXT,
        task TEXT,
        worker TEXT);
CREATE INDEX IF NOT EXISTS runner_log_job ON runner_log (job_id, id) WHERE job_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runner_log_created ON runner_log (created_at);
INSERT OR IGNORE INTO runner_meta (key, value) VALUES ('schema', '1');
