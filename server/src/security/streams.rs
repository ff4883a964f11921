//! Open event streams, at most so many in all and so many per person: each holds a connection,
//! a task and a follower of some feed for as long as its page is open, so one script opening
//! thousands (or a person's hundred forgotten tabs) must not take them from everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::identity::User;
use crate::error::ApiError;

/// The open event streams, by person. Cheap to clone.
#[derive(Clone)]
pub struct StreamLimit {
    inner: Arc<Inner>,
}

struct Inner {
    most: usize,
    most_per_person: usize,
    /// Open streams by person; a person with none is removed. A std mutex, held to count.
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream, counted until it is dropped (with the response body that carries it).
pub struct StreamPermit {
    limit: StreamLimit,
    person: String,
}

impl StreamLimit {
    /// At most `most` streams open in all, `most_per_person` of them one person's.
    pub fn new(most: usize, most_per_person: usize) -> Self {
        let inner = Inner { most, most_per_person, open: Mutex::default() };
        StreamLimit { inner: Arc::new(inner) }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inner.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Streams open now, in all.
    pub fn count(&self) -> usize {
        self.open().values().sum()
    }

    /// Counts one more stream of `person`: 429 when they have their share open, 503 when
    /// everyone's is.
    pub fn open_one(&self, person: &str) -> Result<StreamPermit, ApiError> {
        let mut open = self.open();
        let theirs = open.get(person).copied().unwrap_or(0);
        if theirs >= self.inner.most_per_person {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{person} has {theirs} live pages open, the most one person may; close one \
                 (each page's live updates are one stream)"
                ),
            ));
        }
        if open.values().sum::<usize>() >= self.inner.most {
            return Err(ApiError::unavailable(format!(
                "raydar has {} live pages open, the most it serves at once; try again later",
                self.inner.most
            )));
        }
        *open.entry(person.to_owned()).or_default() += 1;
        Ok(StreamPermit { limit: self.clone(), person: person.to_owned() })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limit.open();
        if let Some(count) = open.get_mut(&self.person) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.person);
            }
        }
    }
}

/// Middleware: an answer that is an event stream is counted against its requester while its
/// body is open, or refused (the stream dropped unread) when they or raydar are at the limit.
/// Whatever the route: a new stream endpoint is counted without being listed anywhere.
pub async fn count_streams(
    State(limit): State<StreamLimit>,
    request: Request,
    next: Next,
) -> Response {
    let person = request.extensions().get::<User>().map(|u| u.name.clone());
    let response = next.run(request).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    let Some(person) = person.filter(|_| streaming) else { return response };
    match limit.open_one(&person) {
        Ok(permit) => response.map(|body| {
            // The permit goes with the body: dropped when the stream ends or the page goes.
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _open = &permit;
                chunk
            }))
        }),
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_limited_per_person_and_in_all_and_freed_when_closed() {
        let limit = StreamLimit::new(3, 2);
        let a1 = limit.open_one("alice").unwrap();
        let _a2 = limit.open_one("alice").unwrap();
        assert_eq!(limit.open_one("alice").err().map(|e| e.status.as_u16()), Some(429));
        let _b1 = limit.open_one("bob").unwrap();
        assert_eq!(limit.open_one("carol").err().map(|e| e.status.as_u16()), Some(503));
        drop(a1);
        assert_eq!(limit.count(), 2);
        let _c1 = limit.open_one("carol").expect("a closed stream frees its place");
        assert!(limit.open_one("alice").is_err(), "in all at the limit again");
    }
}
