-- RayJobs in the history list: the RayJob a cluster was made for (its owner reference), '' for a
-- cluster launched on its own, so the list can show RayJobs and filter to them (or leave them out)
-- from its one covering index.
ALTER TABLE clusters ADD COLUMN rayjob TEXT NOT NULL DEFAULT '';

DROP INDEX clusters_listed;
CREATE INDEX clusters_listed ON clusters (created_at, uid, namespace, owner, team, template,
    outcome, deleted_at, search, rayjob);
