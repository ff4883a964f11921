-- Several Kubernetes clusters (--contexts): the one a cluster is on, by its context's name; '' is
-- the home one (what every row was before, and what a raydar of one Kubernetes cluster writes).
-- A watch that lists everything again ends only the live rows of its own Kubernetes cluster.
ALTER TABLE clusters ADD COLUMN context TEXT NOT NULL DEFAULT '';
