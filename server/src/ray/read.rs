//! The allowlist: the closed set of reads raydar may send to a Ray dashboard, each a GET built
//! from a parsed path.

/// One read of a Ray dashboard: the only requests raydar ever sends to one, each a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// `GET /api/version`: Ray's version and session.
    Version,
    /// `GET /api/jobs/`: every job.
    Jobs,
    /// `GET /api/jobs/{id}`: one job.
    Job(String),
    /// `GET /api/jobs/{id}/logs`: a job's log so far.
    JobLogs(String),
    /// `GET /api/jobs/{id}/logs/tail`, upgraded to a WebSocket: a job's log from its start, then
    /// live until the job is done. Opened only by [`Dashboards::tail`].
    JobLogTail(String),
    /// `GET /nodes?view=summary`: Ray's nodes with CPU, memory and GPUs.
    Nodes,
    /// `GET /api/cluster_status`: the autoscaler's view.
    ClusterStatus,
    /// `GET /api/gcs_healthz`: whether the head's GCS answers.
    GcsHealth,
}

impl Read {
    /// The read a dashboard path (without the leading `/`) and query name, if it is one of them;
    /// otherwise why not.
    pub fn parse(path: &str, query: Option<&str>) -> Result<Read, String> {
        let query = query.filter(|q| !q.is_empty());
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let read = match segments.as_slice() {
            ["api", "version"] => Read::Version,
            ["api", "jobs"] => Read::Jobs,
            ["api", "jobs", id] => Read::Job(job_id(id)?),
            ["api", "jobs", id, "logs"] => Read::JobLogs(job_id(id)?),
            ["api", "jobs", id, "logs", "tail"] => Read::JobLogTail(job_id(id)?),
            ["nodes"] if query == Some("view=summary") => return Ok(Read::Nodes),
            ["api", "cluster_status"] => Read::ClusterStatus,
            ["api", "gcs_healthz"] => Read::GcsHealth,
            _ => {
                return Err(format!(
                    "/{path} is not one of the Ray dashboard reads raydar makes ({})",
                    Read::ALLOWED
                ))
            }
        };
        match query {
            None => Ok(read),
            Some(q) => Err(format!("/{path} takes no query, got {q:?}")),
        }
    }

    /// The allowlist, for messages and the API's description.
    pub const ALLOWED: &'static str =
        "GET /api/version, /api/jobs/, /api/jobs/{id}, /api/jobs/{id}/logs, \
        /nodes?view=summary, /api/cluster_status, /api/gcs_healthz; and the WebSocket GET \
        /api/jobs/{id}/logs/tail, only through raydar's log streams";

    /// Whether this read is Ray's WebSocket log tail rather than a JSON answer.
    pub fn is_tail(&self) -> bool {
        matches!(self, Read::JobLogTail(_))
    }

    /// Path and query on the dashboard, without the leading `/`.
    pub fn path(&self) -> String {
        match self {
            Read::Version => "api/version".into(),
            Read::Jobs => "api/jobs/".into(),
            Read::Job(id) => format!("api/jobs/{id}"),
            Read::JobLogs(id) => format!("api/jobs/{id}/logs"),
            Read::JobLogTail(id) => format!("api/jobs/{id}/logs/tail"),
            Read::Nodes => "nodes?view=summary".into(),
            Read::ClusterStatus => "api/cluster_status".into(),
            Read::GcsHealth => "api/gcs_healthz".into(),
        }
    }
}

/// A Ray job or submission id: letters, digits, `_` and `-`, nothing that could leave the path.
fn job_id(id: &str) -> Result<String, String> {
    match platform::dashboard::job_id_problem(id) {
        None => Ok(id.to_owned()),
        Some(problem) => Err(problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowlisted_reads_parse() {
        assert_eq!(Read::parse("api/version", None), Ok(Read::Version));
        assert_eq!(Read::parse("api/jobs/", None), Ok(Read::Jobs));
        assert_eq!(
            Read::parse("api/jobs/raysubmit_a1B2", None),
            Ok(Read::Job("raysubmit_a1B2".into()))
        );
        assert_eq!(
            Read::parse("api/jobs/02000000/logs", None),
            Ok(Read::JobLogs("02000000".into()))
        );
        assert_eq!(Read::parse("nodes", Some("view=summary")), Ok(Read::Nodes));
        // Parsed so that its id is checked like every other; the generic route still refuses it.
        assert_eq!(
            Read::parse("api/jobs/raysubmit_1/logs/tail", None),
            Ok(Read::JobLogTail("raysubmit_1".into()))
        );
        for (path, query) in [
            ("api/jobs/x/stop", None),
            ("api/jobs/x/logs/tail/x", None),
            ("api/jobs/a%2Fb/logs/tail", None),
            ("api/jobs/x/logs/tail", Some("follow=1")),
            ("api/v0/tasks", None),
            ("api/jobs/../../etc", None),
            ("api/jobs/%2e%2e", None),
            ("nodes", Some("view=details")),
            ("nodes", None),
            ("api/version", Some("x=1")),
            ("", None),
        ] {
            assert!(Read::parse(path, query).is_err(), "{path}?{query:?} must be refused");
        }
    }

    #[test]
    fn every_read_goes_back_to_the_path_it_came_from() {
        for read in [
            Read::Version,
            Read::Jobs,
            Read::Job("j-1".into()),
            Read::JobLogs("j_2".into()),
            Read::JobLogTail("j_3".into()),
            Read::ClusterStatus,
            Read::GcsHealth,
        ] {
            assert_eq!(read.is_tail(), matches!(read, Read::JobLogTail(_)));
            assert_eq!(Read::parse(&read.path(), None), Ok(read));
        }
        let (path, query) =
            Read::Nodes.path().split_once('?').map(|(p, q)| (p.to_owned(), q.to_owned())).unwrap();
        assert_eq!(Read::parse(&path, Some(&query)), Ok(Read::Nodes));
    }
}
