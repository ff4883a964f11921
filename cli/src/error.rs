//! Why a command failed, in words that fit on one line each.

use std::time::Duration;

use platform::template::format_duration;
use platform::FieldError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The launch request is wrong: one error per parameter (or `name`, `namespace`).
    #[error("{}", fields(.0))]
    InvalidRequest(Vec<FieldError>),
    /// The template is broken or not a template.
    #[error("{0}")]
    Template(String),
    /// The template file could not be read.
    #[error("cannot read template file {path}: {source}")]
    TemplateFile {
        /// The path given with `-t`.
        path: String,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// No kubeconfig (or in-cluster configuration) could be loaded.
    #[error("cannot load the Kubernetes configuration: {0} (set KUBECONFIG or use --context)")]
    Config(String),
    /// The Kubernetes API answered with a refusal (RBAC, admission, validation, conflict...).
    #[error("{action}: {reason} ({code}): {message}")]
    Refused {
        /// What raydar was doing ("applying RayCluster ml/demo").
        action: String,
        /// HTTP status code.
        code: u16,
        /// The apiserver's reason (`Forbidden`, `Invalid`, `Conflict`).
        reason: String,
        /// The apiserver's message.
        message: String,
    },
    /// The Kubernetes API could not be reached or its answer not read.
    #[error("{action}: {message}")]
    Unreachable {
        /// What raydar was doing.
        action: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The Kubernetes API answered with something raydar cannot read.
    #[error("{action}: {message}")]
    Unexpected {
        /// What raydar was doing.
        action: String,
        /// What could not be read.
        message: String,
    },
    /// A call to the Kubernetes API did not finish in time.
    #[error("{action}: no answer from the Kubernetes API within {} (--request-timeout)", format_duration(*.after))]
    RequestTimeout {
        /// What raydar was doing.
        action: String,
        /// The time allowed.
        after: Duration,
    },
    /// Something the command needs is missing or in the way; the text says what to do.
    #[error("{0}")]
    Precondition(String),
    /// Some kubeconfig contexts did not answer `--all-contexts` (the others were listed): each
    /// one's name and why.
    #[error("{} of the kubeconfig's contexts did not answer", .0.len())]
    ContextsUnanswered(Vec<(String, Error)>),
    /// The cluster reached `Failed` while `up --wait` waited.
    #[error("RayCluster {cluster} failed: {reason}")]
    ClusterFailed {
        /// `namespace/name`.
        cluster: String,
        /// KubeRay's reason.
        reason: String,
    },
    /// `--wait` ran out of time.
    #[error("timed out after {} waiting for {object} {goal}; last seen: {last}", format_duration(*.after))]
    WaitTimeout {
        /// `RayCluster namespace/name`, `RayJob namespace/name`.
        object: String,
        /// "to be Ready", "to be gone", "to be submitted".
        goal: &'static str,
        /// The last state seen.
        last: String,
        /// The time allowed (`--timeout`).
        after: Duration,
    },
    /// A Ray job ended other than SUCCEEDED (`run`, `submit --wait`, `logs -f`).
    #[error("Ray job {job} ended {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    JobFailed {
        /// The job's submission id.
        job: String,
        /// `FAILED`, `STOPPED`, or the RayJob's own status when Ray never ran it.
        status: String,
        /// Ray's (or KubeRay's) words on why.
        message: Option<String>,
    },
    /// A followed log is no longer the one printed so far: not continued, which would repeat or
    /// lose lines.
    #[error("the log of Ray job {job} {how} (the Ray head restarted?); stopped following it")]
    LogReplaced {
        /// The job's submission id.
        job: String,
        /// What happened to it: "is shorter than what was printed", "changed".
        how: String,
    },
}

/// Result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The lines `main` prints after `error: `: one per field for a bad request, else one.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Error::InvalidRequest(errors) => {
                errors.iter().map(|e| one_line(&e.to_string())).collect()
            }
            Error::ContextsUnanswered(failed) => failed
                .iter()
                .map(|(context, e)| one_line(&format!("context {context}: {e}")))
                .collect(),
            other => vec![one_line(&other.to_string())],
        }
    }

    /// An error from a call to the Kubernetes API made while doing `action`.
    pub fn kube(action: impl Into<String>, error: kube::Error) -> Self {
        let action = action.into();
        match error {
            kube::Error::Api(status) => Error::Refused {
                action,
                code: status.code,
                reason: if status.reason.is_empty() {
                    "Failure".to_owned()
                } else {
                    status.reason.clone()
                },
                message: status.message.clone(),
            },
            kube::Error::SerdeError(e) => Error::Unexpected {
                action,
                message: format!("the apiserver's answer is not what raydar reads: {e}"),
            },
            other => Error::Unreachable { action, message: causes(&other) },
        }
    }

    /// Both values; else every field error of both at once (or the first other error).
    pub fn both<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
        match (a, b) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(Error::InvalidRequest(mut first)), Err(Error::InvalidRequest(second))) => {
                first.extend(second);
                Err(Error::InvalidRequest(first))
            }
            (Err(error), _) | (_, Err(error)) => Err(error),
        }
    }

    /// A Ray job that ended `status`, with the gist of Ray's `message` (see [`gist`]).
    pub fn job_failed(job: &str, status: &str, message: &str) -> Self {
        let message = gist(message);
        let message = (!message.is_empty()).then_some(message);
        Error::JobFailed { job: job.to_owned(), status: status.to_owned(), message }
    }

    /// The HTTP status of a refusal from the Kubernetes API.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<platform::TemplateError> for Error {
    fn from(error: platform::TemplateError) -> Self {
        match error {
            platform::TemplateError::InvalidRequest(errors) => Error::InvalidRequest(errors),
            other => Error::Template(other.to_string()),
        }
    }
}

/// An error and its sources, `: `-separated; kube's own wrapping words are dropped where a
/// source says the same thing better.
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

fn fields(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Longest gist of a message from Ray or KubeRay.
const GIST: usize = 200;

/// The first line of a Ray or KubeRay message, without the end of the job's log that Ray adds
/// to a failure's (the log was printed already), cut to [`GIST`] characters.
pub fn gist(message: &str) -> String {
    let first = message.trim().lines().next().unwrap_or_default();
    let first = first.split(", last available logs").next().unwrap_or_default().trim_end();
    match first.char_indices().nth(GIST) {
        Some((at, _)) => format!("{}…", &first[..at]),
        None => first.to_owned(),
    }
}

/// Messages from the apiserver or a parser may hold newlines; a failure is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_are_one_line_each() {
        let error = Error::InvalidRequest(vec![
            FieldError::new("workers", "must be an integer from 0 to 4, got \"abc\""),
            FieldError::new("name", "must be\nshort"),
        ]);
        assert_eq!(
            error.lines(),
            vec!["workers: must be an integer from 0 to 4, got \"abc\"", "name: must be short"]
        );
    }

    #[test]
    fn field_errors_of_both_are_said_together() {
        let field = |f: &str| Error::InvalidRequest(vec![FieldError::new(f, "bad")]);
        let both = Error::both::<(), ()>(Err(field("workers")), Err(field("entrypoint")));
        assert_eq!(both.unwrap_err().lines(), vec!["workers: bad", "entrypoint: bad"]);
        let other = Error::both::<(), ()>(Ok(()), Err(Error::Precondition("no".into())));
        assert_eq!(other.unwrap_err().lines(), vec!["no"]);
        assert_eq!(Error::both(Ok(1), Ok(2)).unwrap(), (1, 2));
    }

    #[test]
    fn a_failed_jobs_message_is_its_gist() {
        let ray = "Job entrypoint command failed with exit code 3, last available logs \
                   (truncated to 20,000 chars):\nRunning entrypoint\nabout to fail\n";
        let error = Error::job_failed("j-1", "FAILED", ray);
        assert_eq!(
            error.lines(),
            vec!["Ray job j-1 ended FAILED: Job entrypoint command failed with exit code 3"]
        );
        assert_eq!(
            Error::job_failed("j-1", "STOPPED", " ").lines(),
            vec!["Ray job j-1 ended STOPPED"]
        );
        assert_eq!(gist(&"é".repeat(300)).chars().count(), GIST + 1);
    }

    #[test]
    fn refusals_keep_status_and_message() {
        let status = kube::core::Status::failure(
            "rayclusters.ray.io is forbidden: User \"bob\" cannot patch",
            "Forbidden",
        )
        .with_code(403);
        let error = Error::kube("applying RayCluster ml/demo", kube::Error::Api(Box::new(status)));
        assert_eq!(error.status_code(), Some(403));
        assert_eq!(
            error.lines(),
            vec!["applying RayCluster ml/demo: Forbidden (403): rayclusters.ray.io is forbidden: User \"bob\" cannot patch"]
        );
    }
}
