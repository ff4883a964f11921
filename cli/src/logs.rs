//! `raydar logs`: a Ray job's log, read from its cluster's dashboard ([`Dashboard`]); with `-f`,
//! followed until the job ends ([`follow`], which `run` and `submit --wait` use too).
//!
//! Ray's log read (`GET /api/jobs/{id}/logs`) answers with the whole log so far, so following is
//! reading it again each second and printing only what is past the part already printed. What is
//! kept between reads is how much was printed and its last few bytes ([`LogFollow`]), not the log.

use std::time::Duration;

use platform::overview::RayJob;

use crate::args::LogsArgs;
use crate::dashboard::Dashboard;
use crate::error::{Error, Result};
use crate::kubernetes::Kubernetes;
use crate::output::print_text;

/// How often a followed log is read again.
pub const POLL: Duration = Duration::from_secs(1);
/// Reads in a row that may fail (a head restarting, a slow apiserver) before following gives up.
const MAX_FAILURES: u32 = 5;
/// Bytes of the end of what was printed kept, to notice a log that was replaced by another
/// at least as long (a restarted head with a job of the same id).
const TAIL: usize = 64;

/// `raydar logs`.
pub async fn logs(kubernetes: &Kubernetes, args: &LogsArgs) -> Result<()> {
    let namespace = kubernetes.namespace(args.namespace.as_deref());
    let dashboard = Dashboard::new(kubernetes, &namespace, &args.name)?;
    let id = match &args.job {
        Some(id) => id.clone(),
        None => newest_job(&dashboard).await?,
    };
    if !args.follow {
        print_text(&dashboard.logs(&id).await?);
        return Ok(());
    }
    let job = follow(&dashboard, &id, print_text).await?;
    succeeded(&job)
}

/// The id of the cluster's newest Ray job.
async fn newest_job(dashboard: &Dashboard) -> Result<String> {
    // Ray's list is sorted newest first by platform::dashboard::jobs.
    match dashboard.jobs().await?.into_iter().next() {
        Some(job) => Ok(job.id),
        None => Err(Error::Precondition(format!(
            "RayCluster {} has no Ray jobs yet; `raydar submit` runs one",
            dashboard.cluster()
        ))),
    }
}

/// `Ok` if the job SUCCEEDED, else the error that names its status and Ray's message.
pub fn succeeded(job: &RayJob) -> Result<()> {
    if job.status == "SUCCEEDED" {
        return Ok(());
    }
    Err(Error::job_failed(&job.id, &job.status, job.message.as_deref().unwrap_or_default()))
}

/// Follows job `id`'s log until the job ends, giving each new part to `print`; returns the job
/// as Ray last said. The job's status is read before the log each time, so the read after the
/// status turned final holds the whole log.
pub async fn follow(dashboard: &Dashboard, id: &str, print: impl Fn(&str)) -> Result<RayJob> {
    let mut log = LogFollow::default();
    let mut failures = 0;
    loop {
        let read = async { Ok::<_, Error>((dashboard.job(id).await?, dashboard.logs(id).await?)) };
        match read.await {
            Ok((job, text)) => {
                failures = 0;
                print(log.next(&text).map_err(|how| Error::LogReplaced {
                    job: id.to_owned(),
                    how: how.to_owned(),
                })?);
                if job.finished() {
                    return Ok(job);
                }
            }
            Err(error) if failures < MAX_FAILURES && passing(&error) => {
                failures += 1;
                eprintln!("warning: {}; trying again", error.lines().join("; "));
            }
            Err(error) => return Err(error),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a failed read may work a moment later: no answer, or the proxy found no head to
/// send it to (5xx); a refusal (403, 404) will not change.
fn passing(error: &Error) -> bool {
    match error {
        Error::Unreachable { .. } | Error::RequestTimeout { .. } => true,
        Error::Refused { code, .. } => *code >= 500,
        _ => false,
    }
}

/// What of a followed log was printed: how much, and the end of it.
#[derive(Debug, Default)]
pub struct LogFollow {
    /// Bytes printed.
    printed: usize,
    /// The last (at most [`TAIL`]) bytes printed.
    tail: String,
}

impl LogFollow {
    /// The part of `text`, the whole log as read now, that was not printed yet; counted as
    /// printed. An error says how `text` is not a continuation of what was printed.
    pub fn next<'a>(&mut self, text: &'a str) -> Result<&'a str, &'static str> {
        if text.len() < self.printed {
            return Err("is shorter than what was printed");
        }
        let start = self.printed - self.tail.len();
        if text.get(start..self.printed) != Some(self.tail.as_str()) {
            return Err("changed");
        }
        let new = &text[self.printed..];
        self.printed = text.len();
        let mut from = text.len().saturating_sub(TAIL);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        self.tail = text[from..].to_owned();
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading a growing log again and again prints each byte once, whatever the cuts.
    #[test]
    fn a_growing_log_is_printed_once_in_order() {
        let whole = "line 1\nline 2 é ü\npartial".to_owned() + &"x".repeat(200) + "\nend\n";
        for step in [1, 3, 7, 64, 500] {
            let mut follow = LogFollow::default();
            let mut printed = String::new();
            let mut cut = 0;
            loop {
                while !whole.is_char_boundary(cut) {
                    cut += 1;
                }
                printed.push_str(follow.next(&whole[..cut]).unwrap());
                // The same text again adds nothing.
                assert_eq!(follow.next(&whole[..cut]), Ok(""));
                if cut == whole.len() {
                    break;
                }
                cut = (cut + step).min(whole.len());
            }
            assert_eq!(printed, whole, "step {step}");
        }
    }

    #[test]
    fn a_shrunk_or_replaced_log_is_said_not_printed() {
        let mut follow = LogFollow::default();
        assert_eq!(follow.next("one\ntwo\n"), Ok("one\ntwo\n"));
        assert_eq!(follow.next("one\n"), Err("is shorter than what was printed"));
        let mut follow = LogFollow::default();
        follow.next("one\ntwo\n").unwrap();
        assert_eq!(follow.next("uno\ndos\ntres\n"), Err("changed"));
        let mut follow = LogFollow::default();
        assert_eq!(follow.next(""), Ok(""));
        assert_eq!(follow.next("x"), Ok("x"));
    }

    #[test]
    fn only_what_can_pass_is_tried_again() {
        let refused = |code| Error::Refused {
            action: "reading".into(),
            code,
            reason: "x".into(),
            message: "y".into(),
        };
        assert!(passing(&refused(503)));
        assert!(!passing(&refused(404)));
        assert!(passing(&Error::Unreachable { action: "a".into(), message: "b".into() }));
        assert!(!passing(&Error::Precondition("no".into())));
    }

    #[test]
    fn only_success_is_success() {
        let job = |status: &str, message: Option<&str>| RayJob {
            id: "j-1".into(),
            status: status.into(),
            message: message.map(str::to_owned),
            ..RayJob::default()
        };
        assert!(succeeded(&job("SUCCEEDED", None)).is_ok());
        let failed = succeeded(&job("FAILED", Some("exit code 3"))).unwrap_err();
        assert_eq!(failed.lines(), vec!["Ray job j-1 ended FAILED: exit code 3"]);
        let stopped = succeeded(&job("STOPPED", None)).unwrap_err();
        assert_eq!(stopped.lines(), vec!["Ray job j-1 ended STOPPED"]);
    }
}
