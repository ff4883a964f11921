//! A Ray pod's log, followed through the Kubernetes log API and resumed by timestamp.

use std::sync::Arc;
use std::time::Duration;

use futures::AsyncBufReadExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;

use super::{text, Backoff, Feed, Lines, CALL_TIMEOUT};

/// A followed pod log quiet this long is checked by reading its pod: a pod that is gone or a
/// container that stopped ends the log even when the log connection does not close (kwok keeps
/// it open after the pod is deleted; a connection can also die without a word).
const POD_QUIET: Duration = Duration::from_secs(30);
/// A followed pod log quiet this long is reopened, which replays nothing: a chunked HTTP stream
/// has no ping, so this is how a connection that died silently is noticed.
const POD_IDLE: Duration = Duration::from_secs(300);

/// The newest timestamp of a pod log in hand, and how many lines carried exactly it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mark {
    at: Timestamp,
    count: u64,
}

/// Decides which lines of a (re)opened pod log are new, by their kubelet timestamps.
///
/// Why timestamps and not counting: a pod log can be long and rotates (the kubelet serves the
/// current file only), so reopening from its start would both cost the whole log again and
/// number lines differently. Reopening with `sinceTime` replays almost nothing, but `sinceTime`
/// has whole seconds, so the reopened log starts at the second of the last line in hand: lines
/// before that line's timestamp are old, and of the lines with exactly its timestamp the first
/// `count` are. Timestamps have nanoseconds, so that run is short.
#[derive(Debug, Default)]
struct PodResume {
    mark: Option<Mark>,
    /// Whether this connection is still replaying lines in hand.
    replaying: bool,
    /// Lines with the mark's timestamp seen on this connection.
    run: u64,
}

impl PodResume {
    /// `sinceTime` for reopening: the second of the last line in hand.
    fn since(&self) -> Option<Timestamp> {
        self.mark.and_then(|m| Timestamp::from_second(m.at.as_second()).ok())
    }

    /// A connection (re)opened.
    fn reopened(&mut self) {
        self.replaying = self.mark.is_some();
        self.run = 0;
    }

    /// Whether the line stamped `at` is new; remembers it if so.
    fn is_new(&mut self, at: Option<Timestamp>) -> bool {
        let Some(at) = at else { return !self.replaying };
        match self.mark {
            Some(mark) if self.replaying && at < mark.at => return false,
            Some(mark) if self.replaying && at == mark.at => {
                self.run += 1;
                if self.run <= mark.count {
                    return false;
                }
            }
            _ => {}
        }
        self.replaying = false;
        self.mark = match self.mark {
            Some(mark) if at == mark.at => Some(Mark { at, count: mark.count + 1 }),
            Some(mark) if at < mark.at => Some(mark),
            _ => Some(Mark { at, count: 1 }),
        };
        true
    }
}

/// A pod log line with `timestamps=true`: its timestamp (if it parses) and its text.
fn stamped(raw: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = raw.iter().take(48).position(|&b| b == b' ') else {
        return (None, raw);
    };
    match std::str::from_utf8(&raw[..space]).ok().and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(at) => (Some(at), &raw[space + 1..]),
        None => (None, raw),
    }
}

/// Follows container `container` of pod `pod` until the container has stopped or the pod is gone.
pub async fn follow_pod(feed: Feed, pods: Api<Pod>, pod: String, container: String) {
    let mut resume = PodResume::default();
    let mut backoff = Backoff::new();
    loop {
        let params = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: resume.since(),
            ..LogParams::default()
        };
        let reader = match tokio::time::timeout(CALL_TIMEOUT, pods.log_stream(&pod, &params)).await
        {
            Ok(Ok(reader)) => reader,
            Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
                return feed.end(&format!("pod {pod} is gone: {}", status.message));
            }
            Ok(Err(e)) => {
                feed.problem(format!("cannot read the log of pod {pod}: {e}; retrying"));
                backoff.wait().await;
                continue;
            }
            Err(_) => {
                feed.problem(format!(
                    "the apiserver did not open the log of pod {pod} within {} s; retrying",
                    CALL_TIMEOUT.as_secs()
                ));
                backoff.wait().await;
                continue;
            }
        };
        feed.recovered();
        resume.reopened();
        let mut reader = Box::pin(reader);
        let mut lines = Lines::default();
        let mut take = |raw: &[u8], new: &mut Vec<Arc<str>>| {
            let (at, line) = stamped(raw);
            if resume.is_new(at) {
                new.push(text(line));
            }
        };
        let mut quiet = Duration::ZERO;
        let ended = loop {
            match tokio::time::timeout(POD_QUIET, reader.fill_buf()).await {
                Err(_) => {
                    quiet += POD_QUIET;
                    if let Some(end) = pod_ended(&pods, &pod, &container).await {
                        break Some(end);
                    }
                    // Quiet for long: reopened below.
                    if quiet >= POD_IDLE {
                        break None;
                    }
                }
                Ok(Err(e)) => {
                    feed.problem(format!("the log of pod {pod} broke: {e}; reconnecting"));
                    break None;
                }
                // The kubelet ends a followed log when the container stops; any other close is
                // reopened.
                Ok(Ok([])) => break pod_ended(&pods, &pod, &container).await,
                Ok(Ok(bytes)) => {
                    quiet = Duration::ZERO;
                    let mut new = Vec::new();
                    lines.split(bytes, |raw| take(raw, &mut new));
                    let read = bytes.len();
                    reader.consume_unpin(read);
                    if !new.is_empty() {
                        backoff.reset();
                    }
                    feed.push(new);
                }
            }
        };
        drop(reader);
        if let Some(end) = ended {
            let mut new = Vec::new();
            lines.finish(|raw| take(raw, &mut new));
            feed.push(new);
            return feed.end(&end);
        }
        backoff.wait().await;
    }
}

/// Why the log of `container` in `pod` is complete, if it is: the pod is gone or the container
/// stopped. Not when the pod cannot be read: that is not an answer.
async fn pod_ended(pods: &Api<Pod>, pod: &str, container: &str) -> Option<String> {
    match tokio::time::timeout(CALL_TIMEOUT, pods.get_opt(pod)).await {
        Ok(Ok(None)) => Some(format!("pod {pod} is gone")),
        Ok(Ok(Some(found))) => terminated(&found, container),
        _ => None,
    }
}

/// How container `container` of `pod` ended, if it has.
fn terminated(pod: &Pod, container: &str) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == container)?;
    let done = status.state.as_ref()?.terminated.as_ref()?;
    let reason = done.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    Some(format!("container {container} exited with code {}{reason}", done.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<Timestamp> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn pod_log_lines_carry_their_timestamp() {
        let (stamp, line) = stamped(b"2026-01-01T00:00:01.500000000Z hello world");
        assert_eq!(stamp, at("2026-01-01T00:00:01.5Z"));
        assert_eq!(line, b"hello world");
        assert_eq!(stamped(b"no timestamp here"), (None, &b"no timestamp here"[..]));
    }

    #[test]
    fn a_reopened_pod_log_replays_nothing_in_hand() {
        let mut resume = PodResume::default();
        resume.reopened();
        let t1 = at("2026-01-01T00:00:01.25Z");
        let t2 = at("2026-01-01T00:00:01.75Z");
        // First connection: everything is new, even the same stamp twice.
        assert!([t1, t2, t2].into_iter().all(|t| resume.is_new(t)));
        assert_eq!(
            resume.since(),
            at("2026-01-01T00:00:01Z"),
            "sinceTime is floored to the second"
        );
        // Reopened from 00:00:01: t1 and the two t2 are in hand, a third t2 and later are new.
        resume.reopened();
        let replayed: Vec<bool> = [t1, t2, t2, t2, at("2026-01-01T00:00:02Z")]
            .into_iter()
            .map(|t| resume.is_new(t))
            .collect();
        assert_eq!(replayed, [false, false, false, true, true]);
        // A new container's log starts later: all new.
        resume.reopened();
        assert!(resume.is_new(at("2026-01-01T00:00:03Z")));
    }
}
