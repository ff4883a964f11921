//! A Ray job's log, followed through Ray's WebSocket tail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{text, Backoff, Feed, Lines, CALL_TIMEOUT};
use crate::ray::{DashboardError, Dashboards, Read, Tail};

/// Ray's tail is pinged this often while quiet. Ray never answers (aiohttp answers pings only
/// inside `receive()`, which Ray's tail handler never calls), but a ping keeps proxies from
/// closing a quiet connection and makes a connection that is gone fail on write.
const TAIL_PING: Duration = Duration::from_secs(15);
/// A tail quiet this long is checked by reading the job's status: a dashboard that answers with
/// a running job means a quiet log; anything else means the tail is lost and is reopened.
const TAIL_QUIET: Duration = Duration::from_secs(30);

/// The key under which Ray job `job` of cluster `namespace/name` is followed in
/// [`super::LogStreams`]: its viewers and its archive share the one stream.
pub fn key(namespace: &str, name: &str, job: &str) -> String {
    format!("job/{namespace}/{name}/{job}")
}

/// Follows Ray job `job`'s log on the dashboard of `namespace/name` until the job is done.
///
/// Ray's tail replays the log from its first line on every connect, in TEXT frames of up to 10
/// lines or 20,000 characters (a frame may end inside a line), and closes once the job is
/// terminal and its log read to the end. So after a reconnect the first [`Feed::last`] lines are
/// counted and skipped, and an unfinished line is dropped with its connection (the replay brings
/// it again whole). After Ray closes the tail, the job's status says whether the log is complete.
pub async fn follow_job(
    feed: Feed,
    dashboards: Dashboards,
    namespace: String,
    name: String,
    job: String,
) {
    let (Ok(tail), Ok(status)) = (
        Read::parse(&format!("api/jobs/{job}/logs/tail"), None),
        Read::parse(&format!("api/jobs/{job}"), None),
    ) else {
        return feed.end(&format!("{job:?} is not a Ray job id"));
    };
    let mut backoff = Backoff::new();
    // Whether a tail was open before: a job that was there and is not any more went with its
    // head (Ray keeps a job, and its log, on the head that ran it).
    let mut opened = false;
    loop {
        let mut ws = match dashboards.tail(&namespace, &name, &tail).await {
            Ok(ws) => ws,
            Err(DashboardError::NotFound(_, said)) if opened => {
                return feed.end(&format!(
                    "job {job} is no longer known at the Ray dashboard of {namespace}/{name} \
                     ({said}): a Ray job ends with the head that ran it, so its head restarted or \
                     the cluster is gone; the log ends after line {}",
                    feed.last()
                ));
            }
            // Permanent: nothing to retry for.
            Err(
                e @ (DashboardError::NotFound(..)
                | DashboardError::Rejected(..)
                | DashboardError::NotACluster(_)
                | DashboardError::Refused(_)),
            ) => {
                return feed.end(&e.to_string());
            }
            Err(e) => {
                feed.problem(format!("{e}; retrying"));
                backoff.wait().await;
                continue;
            }
        };
        feed.recovered();
        opened = true;
        let mut replay = Replay { in_hand: feed.last(), seen: 0 };
        let mut lines = Lines::default();
        let mut take = |raw: &[u8], new: &mut Vec<Arc<str>>| {
            if replay.is_new() {
                new.push(text(raw));
            }
        };
        let closed = loop {
            let read = read_tail(&mut ws, |bytes| {
                let mut new = Vec::new();
                lines.split(bytes, |raw| take(raw, &mut new));
                if !new.is_empty() {
                    backoff.reset();
                }
                feed.push(new);
            });
            match read.await {
                TailEnd::Closed => break Ok(()),
                TailEnd::Broken(why) => break Err(why),
                TailEnd::Quiet => match dashboards
                    .read(&namespace, &name, &status)
                    .await
                    .map(|body| platform::dashboard::job_status(&body))
                {
                    Ok(Some(state)) if !platform::dashboard::is_terminal(&state) => continue,
                    // Ray closes the tail within a second or two of a job's end.
                    Ok(_) => {
                        break Err(format!(
                            "still open {} s after the job ended",
                            TAIL_QUIET.as_secs()
                        ))
                    }
                    Err(e) => break Err(format!("quiet for {} s, and {e}", TAIL_QUIET.as_secs())),
                },
            }
        };
        drop(ws);
        if let Err(why) = closed {
            feed.problem(format!("the log tail of job {job} broke: {why}; reconnecting"));
            backoff.wait().await;
            continue;
        }
        match dashboards.read(&namespace, &name, &status).await.map(|body| platform::dashboard::job_status(&body)) {
            Ok(Some(state)) if platform::dashboard::is_terminal(&state) => {
                let mut new = Vec::new();
                lines.finish(|raw| take(raw, &mut new));
                feed.push(new);
                return feed.end(&format!("job {state}"));
            }
            Ok(state) => {
                let state = state.as_deref().unwrap_or("in an unknown state");
                feed.problem(format!("Ray closed the log tail of job {job} while it is {state}; reconnecting"));
            }
            Err(e) => feed.problem(format!("Ray closed the log tail of job {job}, and its status is unknown: {e}; reconnecting")),
        }
        backoff.wait().await;
    }
}

/// Counts the lines of a replayed log: the first `in_hand` are the ones already in hand.
struct Replay {
    in_hand: u64,
    seen: u64,
}

impl Replay {
    /// Whether the next line is past those in hand.
    fn is_new(&mut self) -> bool {
        self.seen += 1;
        self.seen > self.in_hand
    }
}

/// How a read of a tail stopped.
enum TailEnd {
    /// Ray closed it.
    Closed,
    /// It broke; why.
    Broken(String),
    /// Nothing came for [`TAIL_QUIET`]: the caller finds out whether that is a quiet log.
    Quiet,
}

/// Reads a tail's frames into `each` until Ray closes it, it breaks or it was quiet for
/// [`TAIL_QUIET`]. Pings every [`TAIL_PING`] meanwhile.
async fn read_tail(ws: &mut Tail, mut each: impl FnMut(&[u8])) -> TailEnd {
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + TAIL_PING, TAIL_PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            frame = ws.next() => {
                heard = Instant::now();
                match frame {
                    None | Some(Ok(Message::Close(_))) => return TailEnd::Closed,
                    Some(Ok(Message::Text(text))) => each(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => each(&bytes),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return TailEnd::Broken(e.to_string()),
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= TAIL_QUIET {
                    return TailEnd::Quiet;
                }
                match tokio::time::timeout(CALL_TIMEOUT, ws.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return TailEnd::Broken(e.to_string()),
                    Err(_) => return TailEnd::Broken("a ping could not be sent".into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_skips_the_lines_in_hand() {
        let mut replay = Replay { in_hand: 3, seen: 0 };
        let new: Vec<bool> = (0..5).map(|_| replay.is_new()).collect();
        assert_eq!(new, [false, false, false, true, true]);
    }
}
