-- raydar's history: one set of migrations for SQLite and PostgreSQL alike, so it keeps to what
-- both read the same way: TEXT, BIGINT (Unix seconds or milliseconds, as each column says), no
-- autoincrement (every row has a natural key), JSON kept as TEXT.

-- Every RayCluster raydar has seen, by uid: a cluster deleted and made again under its name is
-- another row.
CREATE TABLE clusters (
    uid TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    template TEXT NOT NULL DEFAULT '',
    pipeline TEXT NOT NULL DEFAULT '',
    run TEXT NOT NULL DEFAULT '',
    -- The template's parameters as launched (raydar.dev/parameters), a JSON object.
    parameters TEXT NOT NULL DEFAULT '{}',
    -- metadata (labels, annotations) and spec as first seen, JSON.
    manifest TEXT NOT NULL DEFAULT '',
    -- Unix seconds.
    created_at BIGINT NOT NULL,
    -- The first time it was seen Ready, Unix milliseconds.
    ready_at BIGINT,
    -- The phase last seen (Provisioning, Ready, Suspending, Suspended, Failed) and its reason.
    phase TEXT NOT NULL DEFAULT '',
    phase_reason TEXT NOT NULL DEFAULT '',
    -- Most GPUs it held or asked for at once.
    gpus BIGINT NOT NULL DEFAULT 0,
    -- When it was deleted, Unix milliseconds; NULL while it lives.
    deleted_at BIGINT,
    -- How it ended (live while it lives): torn-down, failed, expired, reclaimed, finished,
    -- deleted (outside raydar).
    outcome TEXT NOT NULL DEFAULT 'live',
    -- The outcome raydar gave it when it deleted it, before the deletion was seen.
    ending TEXT NOT NULL DEFAULT '',
    -- Who or what deleted it, and why, when raydar knows.
    ended_by TEXT NOT NULL DEFAULT '',
    ended_why TEXT NOT NULL DEFAULT '',
    -- Bytes this cluster's rows take, about: what retention by size counts.
    bytes BIGINT NOT NULL DEFAULT 0,
    -- Last written, Unix milliseconds.
    updated_at BIGINT NOT NULL
);
CREATE INDEX clusters_by_created ON clusters (created_at, uid);
CREATE INDEX clusters_by_deleted ON clusters (deleted_at);
CREATE INDEX clusters_by_namespace ON clusters (namespace, created_at);

-- Every phase a cluster went through, with when raydar saw it change.
CREATE TABLE phases (
    cluster_uid TEXT NOT NULL,
    at BIGINT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cluster_uid, at, phase)
);

-- Kubernetes Events of a cluster and of its pods, by the Event's uid: kept past the apiserver's
-- hour.
CREATE TABLE events (
    cluster_uid TEXT NOT NULL,
    uid TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    object TEXT NOT NULL,
    count BIGINT NOT NULL,
    -- Unix seconds.
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (cluster_uid, uid)
);
