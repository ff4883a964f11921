-- What a cluster's GPUs did, one row per step (5 minutes by default): GPUs held, their mean
-- utilization in thousandths of a percent (NULL when none was read), busy and idle GPU-seconds.
CREATE TABLE gpu_use (
    cluster_uid TEXT NOT NULL,
    -- Unix seconds, and the step's length.
    at BIGINT NOT NULL,
    seconds BIGINT NOT NULL,
    gpus BIGINT NOT NULL,
    util_milli BIGINT,
    busy_s BIGINT NOT NULL,
    idle_s BIGINT NOT NULL,
    PRIMARY KEY (cluster_uid, at)
);
