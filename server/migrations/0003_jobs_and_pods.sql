-- Ray jobs of the clusters history holds, by the cluster's uid and the job's id (its submission
-- id, or Ray's job id for a driver started by hand), as last seen; and their driver logs.
CREATE TABLE jobs (
    cluster_uid TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    entrypoint TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    -- Unix milliseconds.
    started_at BIGINT,
    ended_at BIGINT,
    -- How much of its driver log is archived (none, archiving, complete, cut, partial), why
    -- when not all of it, and how much.
    log_state TEXT NOT NULL DEFAULT 'none',
    log_note TEXT NOT NULL DEFAULT '',
    log_lines BIGINT NOT NULL DEFAULT 0,
    log_bytes BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_uid, id)
);

-- A job's driver log in chunks of consecutive lines (numbered from 1), each gzip-compressed
-- text. BYTEA is PostgreSQL's bytes; SQLite keeps bytes as given in a column of any type.
CREATE TABLE job_logs (
    cluster_uid TEXT NOT NULL,
    job TEXT NOT NULL,
    first_line BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (cluster_uid, job, first_line)
);

-- Every time a container of a cluster's Ray pod ended (its state or last state `terminated`), by
-- the pod, the container and when: why (OOMKilled, Error, Completed), its exit code, its restart
-- count then, and the last lines it printed when it failed.
CREATE TABLE terminations (
    cluster_uid TEXT NOT NULL,
    pod TEXT NOT NULL,
    container TEXT NOT NULL,
    -- Unix seconds.
    finished_at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    exit_code BIGINT NOT NULL,
    restarts BIGINT NOT NULL DEFAULT 0,
    last_lines TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cluster_uid, pod, container, finished_at)
);
