CREATE TABLE watcher_services (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    phase TEXT,
    last_seen BIGINT NOT NULL,
    last_beat BIGINT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    down_since BIGINT
);
CREATE INDEX watcher_services_due ON watcher_services (deadline)
    WHERE (status = 'up' OR reason = 'timeout');
CREATE INDEX watcher_services_down ON watcher_services (down_since) WHERE status = 'down';
CREATE TABLE watcher_issues (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX watcher_issues_one_open ON watcher_issues (fingerprint) WHERE state = 'open';
CREATE INDEX watcher_issues_by_state ON watcher_issues (state, changed_at);
CREATE INDEX watcher_issues_by_subject ON watcher_issues (subject) WHERE state = 'open';
CREATE TABLE watcher_containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE watcher_container_counts (
    name TEXT PRIMARY KEY,
    restarts BIGINT NOT NULL,
    oom_kills BIGINT NOT NULL
);
