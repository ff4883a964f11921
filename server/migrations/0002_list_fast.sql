-- The history list, fast at 100,000 clusters without the planner's statistics (SQLite has none
-- until ANALYZE): one index holds every column the list filters on, in its order, so a page is
-- read from the index alone and a filter that matches few rows scans index entries, not rows
-- (which carry their manifests).

-- The words the list's search looks in, lowercased (name, owner, team, template, pipeline, run):
-- one column to match instead of six lowered on every row.
ALTER TABLE clusters ADD COLUMN search TEXT NOT NULL DEFAULT '';
UPDATE clusters SET search = LOWER(name || ' ' || owner || ' ' || team || ' ' || template || ' '
    || pipeline || ' ' || run);

DROP INDEX clusters_by_created;
CREATE INDEX clusters_listed ON clusters (created_at, uid, namespace, owner, team, template,
    outcome, deleted_at, search);

-- The namespaces history has clusters in, so a reader's access is asked about them without
-- scanning every cluster.
CREATE TABLE namespaces (
    name TEXT PRIMARY KEY
);
INSERT INTO namespaces (name) SELECT DISTINCT namespace FROM clusters;
