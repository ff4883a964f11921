//! A RayCluster's Ray dashboard, read through the apiserver's service proxy
//! (`/api/v1/namespaces/{ns}/services/{name}-head-svc:dashboard/proxy/…`) with the kubeconfig's
//! credentials: it works wherever kubectl does, and RBAC on `services/proxy` decides who may.
//!
//! Whoever can send requests to a Ray dashboard runs code on the cluster (its job API takes any
//! entrypoint), so the CLI sends it nothing but GETs of the few reads in [`Read`], each built
//! here from a checked id; jobs are submitted through Kubernetes as RayJobs ([`crate::rayjob`]).

use futures::AsyncReadExt;
use platform::overview::RayJob;
use platform::template::value::{cluster_name_problem, namespace_problem};
use platform::FieldError;

use crate::error::{Error, Result};
use crate::kubernetes::Kubernetes;

/// Longest answer read. A job's log comes whole with every read; one process reads one at a
/// time, so this can be larger than raydar-server's cap, but a dashboard sending more is not
/// held in memory.
pub const MAX_ANSWER: usize = 64 << 20;

/// One read of a Ray dashboard: the only requests the CLI sends to one, each a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Read {
    /// `GET /api/jobs/`: every job.
    Jobs,
    /// `GET /api/jobs/{id}`: one job.
    Job(String),
    /// `GET /api/jobs/{id}/logs`: a job's log so far, `{"logs": "…"}`.
    Logs(String),
}

impl Read {
    /// Path on the dashboard, without the leading `/`.
    fn path(&self) -> String {
        match self {
            Read::Jobs => "api/jobs/".into(),
            Read::Job(id) => format!("api/jobs/{id}"),
            Read::Logs(id) => format!("api/jobs/{id}/logs"),
        }
    }
}

/// The Ray dashboard of one RayCluster.
pub struct Dashboard {
    kubernetes: Kubernetes,
    namespace: String,
    cluster: String,
}

impl Dashboard {
    /// The dashboard of RayCluster `namespace/cluster`; names that cannot be a RayCluster's are
    /// refused here, so nothing but a cluster's service is ever in the proxy path.
    pub fn new(kubernetes: &Kubernetes, namespace: &str, cluster: &str) -> Result<Self> {
        let mut errors = Vec::new();
        if let Some(problem) = cluster_name_problem(cluster) {
            errors.push(FieldError::new("name", problem));
        }
        if let Some(problem) = namespace_problem(namespace) {
            errors.push(FieldError::new("namespace", problem));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidRequest(errors));
        }
        Ok(Dashboard {
            kubernetes: kubernetes.clone(),
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
        })
    }

    /// `namespace/name` of the cluster.
    pub fn cluster(&self) -> String {
        format!("{}/{}", self.namespace, self.cluster)
    }

    /// The cluster's Ray jobs, newest first.
    pub async fn jobs(&self) -> Result<Vec<RayJob>> {
        let body = self.get(&Read::Jobs, "the Ray jobs").await?;
        platform::dashboard::jobs(&body).map_err(|message| self.unexpected("the Ray jobs", message))
    }

    /// One Ray job, by submission id.
    pub async fn job(&self, id: &str) -> Result<RayJob> {
        let what = format!("Ray job {id}");
        let body = self.get(&Read::Job(job_id(id)?), &what).await?;
        platform::dashboard::job(&body).map_err(|message| self.unexpected(&what, message))
    }

    /// A job's log so far.
    pub async fn logs(&self, id: &str) -> Result<String> {
        #[derive(serde::Deserialize)]
        struct Logs {
            logs: String,
        }
        let what = format!("the log of Ray job {id}");
        let body = self.get(&Read::Logs(job_id(id)?), &what).await?;
        serde_json::from_str::<Logs>(&body).map(|l| l.logs).map_err(|e| {
            self.unexpected(&what, format!("Ray's answer is not {{\"logs\": \"…\"}}: {e}"))
        })
    }

    /// GETs `read` through the apiserver's service proxy, within the request timeout, reading at
    /// most [`MAX_ANSWER`] bytes of the answer.
    async fn get(&self, read: &Read, what: &str) -> Result<String> {
        let action =
            format!("reading {what} from the Ray dashboard of RayCluster {}", self.cluster());
        let uri = format!(
            "/api/v1/namespaces/{}/services/{}-head-svc:dashboard/proxy/{}",
            self.namespace,
            self.cluster,
            read.path()
        );
        let client = &self.kubernetes.client;
        let bytes = self
            .kubernetes
            .call(&action, async {
                let request =
                    http::Request::get(uri).body(Vec::new()).map_err(kube::Error::HttpError)?;
                let body = client.request_stream(request).await?;
                let mut bytes = Vec::new();
                let limit = u64::try_from(MAX_ANSWER).unwrap_or(u64::MAX).saturating_add(1);
                std::pin::pin!(body.take(limit))
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(kube::Error::ReadEvents)?;
                Ok(bytes)
            })
            .await
            .map_err(from_ray)?;
        if bytes.len() > MAX_ANSWER {
            return Err(Error::Unexpected {
                action,
                message: format!(
                    "the answer is longer than {} MiB; raydar reads no more",
                    MAX_ANSWER >> 20
                ),
            });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn unexpected(&self, what: &str, message: String) -> Error {
        Error::Unexpected {
            action: format!(
                "reading {what} from the Ray dashboard of RayCluster {}",
                self.cluster()
            ),
            message,
        }
    }
}

/// A refusal that is not the apiserver's own (a Status) but Ray's, passed on by the proxy: kube
/// names it by its failure to parse it, which says nothing to a user.
fn from_ray(error: Error) -> Error {
    match error {
        Error::Refused { action, code, reason, message }
            if reason == "Failed to parse error data" =>
        {
            Error::Refused { action, code, reason: "the Ray dashboard said".into(), message }
        }
        other => other,
    }
}

/// A Ray job or submission id: letters, digits, `_` and `-`, nothing that could leave the path.
pub fn job_id(id: &str) -> Result<String> {
    match platform::dashboard::job_id_problem(id) {
        None => Ok(id.to_owned()),
        Some(problem) => Err(Error::InvalidRequest(vec![FieldError::new("job", problem)])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_job_ids_reach_a_path() {
        assert_eq!(
            Read::Logs(job_id("raysubmit_a1B2-x").unwrap()).path(),
            "api/jobs/raysubmit_a1B2-x/logs"
        );
        assert_eq!(Read::Jobs.path(), "api/jobs/");
        for bad in ["", "../x", "a/b", "a%2Fb", "x?y=1", &"j".repeat(129)] {
            let error = job_id(bad).unwrap_err();
            assert!(error.lines()[0].starts_with("job: "), "{bad:?}: {error}");
        }
    }

    #[test]
    fn rays_own_refusals_are_named_as_rays() {
        let status =
            kube::core::Status::failure("Job x does not exist", "Failed to parse error data")
                .with_code(404);
        let error = from_ray(Error::kube("reading the log", kube::Error::Api(Box::new(status))));
        assert_eq!(
            error.lines(),
            vec!["reading the log: the Ray dashboard said (404): Job x does not exist"]
        );
    }
}
