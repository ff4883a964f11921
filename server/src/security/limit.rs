//! Actions (launch, change, teardown) per user per minute, so one account (or a stolen session)
//! cannot flood Kubernetes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::identity::User;
use crate::error::ApiError;

/// Actions (launch, change, teardown) per user per minute, as a token bucket: a burst of the
/// whole minute's allowance, refilled evenly.
#[derive(Clone)]
pub struct ActionLimit {
    per_minute: f64,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl ActionLimit {
    /// Most users tracked; beyond, full buckets (users idle for a minute) are forgotten.
    const MAX_USERS: usize = 100_000;

    /// `per_minute` actions per user.
    pub fn new(per_minute: u32) -> Self {
        ActionLimit { per_minute: f64::from(per_minute), buckets: Arc::default() }
    }

    /// Takes one action from `user`'s allowance, or says (429) when to come back.
    pub fn allow(&self, user: &User) -> Result<(), ApiError> {
        self.take(user).map_err(ApiError::too_many)
    }

    /// Takes one action from `user`'s allowance; `Err` with seconds to wait when there is none.
    pub fn take(&self, user: &User) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        let now = Instant::now();
        if buckets.len() >= Self::MAX_USERS && !buckets.contains_key(&user.name) {
            let per_minute = self.per_minute;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_minute / 60.0 < per_minute
            });
        }
        let (tokens, at) = buckets.entry(user.name.clone()).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_limited_per_user() {
        let limit = ActionLimit::new(3);
        for _ in 0..3 {
            assert_eq!(limit.take(&User::named("alice")), Ok(()));
        }
        let wait = limit.take(&User::named("alice")).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(limit.take(&User::named("bob")), Ok(()), "bob has his own allowance");
    }
}
