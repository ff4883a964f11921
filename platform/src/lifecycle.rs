//! A cluster's lifetime as its annotations say it (`raydar.dev/expires-at`, `raydar.dev/at-expiry`,
//! `raydar.dev/protect`, `raydar.dev/lease-renewed-at`, `raydar.dev/idle`), and the rules around
//! it: when to warn, when to act, how far an extension may go, when an idle cluster is due.
//! Pure: the server's lifecycle controller, template checks and the CLI's `raydar extend` share
//! them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::overview::RayJob;
use crate::template::{
    parse_duration, ExpiryAction, IdlePolicy, ANNOTATION_AT_EXPIRY, ANNOTATION_EXPIRES_AT,
    ANNOTATION_IDLE, ANNOTATION_LEASE, ANNOTATION_PROTECT,
};

/// Seconds before expiry at which the owner is warned, earliest first.
pub const WARNINGS: [i64; 2] = [30 * 60, 5 * 60];

/// What happens to a cluster when its lifetime ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtExpiry {
    /// It is deleted (the default).
    TearDown,
    /// It is suspended: its pods go, the cluster stays to be resumed (and extended).
    Suspend,
}

impl AtExpiry {
    /// The annotation's value: `teardown` or `suspend`.
    pub fn as_str(self) -> &'static str {
        match self {
            AtExpiry::TearDown => "teardown",
            AtExpiry::Suspend => "suspend",
        }
    }

    /// What it does, as Events say it: `torn down`, `suspended`.
    pub fn done(self) -> &'static str {
        match self {
            AtExpiry::TearDown => "torn down",
            AtExpiry::Suspend => "suspended",
        }
    }
}

/// A cluster's lifetime, from its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifetime {
    /// When it ends, Unix seconds; `None`: it does not.
    pub expires_at: Option<i64>,
    /// What happens then.
    pub at_expiry: AtExpiry,
    /// `raydar.dev/protect: "true"`: raydar never reclaims it (expiry, idleness, leases).
    pub protected: bool,
    /// When its launcher last renewed its lease, Unix seconds; `None`: it has no lease.
    pub lease_renewed_at: Option<i64>,
    /// When it is reclaimed for sitting idle; `None`: never.
    pub idle: Option<IdleRule>,
}

impl Lifetime {
    /// What `annotations` say. An `expires-at` that is not an RFC 3339 time is no expiry (the
    /// reason is logged by whoever reads it): raydar never deletes on a guess.
    pub fn of(annotations: Option<&BTreeMap<String, String>>) -> Lifetime {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(|v| v.trim());
        let time =
            |key: &str| get(key).and_then(|t| t.parse::<Timestamp>().ok()).map(|t| t.as_second());
        Lifetime {
            expires_at: time(ANNOTATION_EXPIRES_AT),
            lease_renewed_at: time(ANNOTATION_LEASE),
            at_expiry: match get(ANNOTATION_AT_EXPIRY) {
                Some("suspend") => AtExpiry::Suspend,
                _ => AtExpiry::TearDown,
            },
            protected: get(ANNOTATION_PROTECT) == Some("true"),
            idle: get(ANNOTATION_IDLE)
                .and_then(|text| serde_json::from_str::<IdlePolicy>(text).ok())
                .and_then(|policy| IdleRule::of(&policy).ok()),
        }
    }

    /// Whether raydar has anything to do with the cluster: it ends, holds a lease or may sit
    /// idle.
    pub fn bounded(&self) -> bool {
        self.expires_at.is_some() || self.lease_renewed_at.is_some() || self.idle.is_some()
    }
}

/// Shortest idle window a template may set.
pub const MIN_IDLE: i64 = 60;
/// Longest idle window a template may set: as far back as raydar keeps GPU readings at full
/// resolution (`platform::gpu::history::Retention::fine`).
pub const MAX_IDLE: i64 = 6 * 3600;

/// A cluster's idle policy as raydar applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdleRule {
    /// A GPU below this utilization, percent, is idle.
    pub gpu_below: f64,
    /// Seconds a cluster must sit idle before it is reclaimed.
    pub after_s: i64,
    /// What is done to it then.
    pub action: AtExpiry,
}

impl IdleRule {
    /// `policy`, checked; else every problem, by the field under `policy.idle` it is about.
    pub fn of(policy: &IdlePolicy) -> Result<IdleRule, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let below = policy.gpu_below;
        if !(below > 0.0 && below <= 100.0) {
            problems.push((
                "gpuBelow",
                format!("must be a percentage above 0, at most 100, got {below}"),
            ));
        }
        let after = parse_duration(&policy.after).ok().map(|d| d.as_secs() as i64);
        let after = match after {
            Some(s) if (MIN_IDLE..=MAX_IDLE).contains(&s) => s,
            _ => {
                problems.push((
                    "after",
                    format!(
                        "must be a duration from 1m to 6h like 30m or 2h, got {:?}",
                        policy.after
                    ),
                ));
                0
            }
        };
        let action = match policy.action {
            Some(ExpiryAction::Teardown) => AtExpiry::TearDown,
            Some(ExpiryAction::Suspend) | None => AtExpiry::Suspend,
        };
        if problems.is_empty() {
            Ok(IdleRule { gpu_below: below, after_s: after, action })
        } else {
            Err(problems)
        }
    }

    /// How long before acting its owner is warned: 5 minutes, or a quarter of a shorter window.
    pub fn warning_lead(&self) -> i64 {
        (self.after_s / 4).min(5 * 60)
    }

    /// What is due for a cluster idle for `idle_for` seconds at `now`, `act_at` being when its
    /// warning said it would be reclaimed (if it was warned). Never an act without a warning
    /// first and its whole lead: a cluster found past its window (its policy new to it, or
    /// raydar's readings reaching back) is warned now and reclaimed a lead later.
    pub fn due(&self, idle_for: i64, now: i64, act_at: Option<i64>) -> Due {
        let lead = self.warning_lead();
        match act_at {
            Some(at) if now >= at => Due::Act,
            Some(_) => Due::Nothing,
            None if self.after_s - idle_for <= lead => Due::Warn { left: lead, before: lead },
            None => Due::Nothing,
        }
    }
}

/// Since when a cluster's Ray `jobs` (as its dashboard lists them) have left it quiet, Unix
/// seconds: the latest end of one, or 0 when none ever ran; `None` while one is pending or
/// running (a job that uses no GPU is still work).
pub fn jobs_quiet_since(jobs: &[RayJob]) -> Option<i64> {
    let mut since = 0;
    for job in jobs {
        if !job.finished() {
            return None;
        }
        since = since.max(job.end_time.unwrap_or(0) / 1000);
    }
    Some(since)
}

/// What is due for a cluster at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    Nothing,
    /// Warn its owner: it ends in `left` seconds (the warning for `before` seconds ahead).
    Warn {
        /// Seconds left.
        left: i64,
        /// Which of [`WARNINGS`] this is.
        before: i64,
    },
    /// Its lifetime is over: act.
    Act,
}

/// What is due at `now` (Unix seconds) for a cluster with `lifetime`, `warned` being the
/// warnings (of [`WARNINGS`]) it was given already. A protected cluster, or one with no expiry,
/// is never due; of two warnings due at once only the later is given.
pub fn due(lifetime: &Lifetime, now: i64, warned: &[i64]) -> Due {
    let Some(expires_at) = lifetime.expires_at.filter(|_| !lifetime.protected) else {
        return Due::Nothing;
    };
    let left = expires_at - now;
    if left <= 0 {
        return Due::Act;
    }
    let pending = WARNINGS.iter().rev().find(|&&before| left <= before);
    match pending {
        Some(&before) if !warned.contains(&before) => Due::Warn { left, before },
        _ => Due::Nothing,
    }
}

/// Whether a cluster with `lifetime` has a lease its launcher stopped renewing: not renewed for
/// `timeout` at `now` (Unix seconds). A protected cluster's never lapses.
pub fn lease_lapsed(lifetime: &Lifetime, now: i64, timeout: Duration) -> bool {
    let timeout = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    !lifetime.protected
        && lifetime.lease_renewed_at.is_some_and(|renewed| now.saturating_sub(renewed) > timeout)
}

/// The new `expires-at` (Unix seconds) of a cluster extended `by` at `now`, when its template
/// allows lifetimes of `max_lifetime`: from its current end (or now, if that has passed), and
/// never past `now + max_lifetime`. The error says what is allowed.
pub fn extended(
    expires_at: Option<i64>,
    by: Duration,
    max_lifetime: Duration,
    now: i64,
) -> Result<i64, String> {
    if by.is_zero() {
        return Err("must be a duration above 0, such as 30m, 2h or 1d".into());
    }
    let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let from = expires_at.unwrap_or(now).max(now);
    let wanted = from.saturating_add(seconds(by));
    let limit = now.saturating_add(seconds(max_lifetime));
    if wanted > limit {
        let most = (limit - from).max(0);
        if most == 0 {
            return Err(format!(
                "it already lives to its template's maximum lifetime of {} from now; it can be \
                 extended once it has less than that left",
                human(seconds(max_lifetime))
            ));
        }
        return Err(format!(
            "would end {} from now, past its template's maximum lifetime of {}: extend by at most {}",
            human(wanted - now),
            human(seconds(max_lifetime)),
            human(most)
        ));
    }
    Ok(wanted)
}

/// `90` as `1m30s`, `7200` as `2h`: how durations are written to people.
pub fn human(seconds: i64) -> String {
    crate::template::format_duration(Duration::from_secs(seconds.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(expires_at: i64) -> Lifetime {
        Lifetime {
            expires_at: Some(expires_at),
            at_expiry: AtExpiry::TearDown,
            protected: false,
            lease_renewed_at: None,
            idle: None,
        }
    }

    #[test]
    fn an_idle_policy_is_checked_stamped_and_due_after_a_warning() {
        let policy = |below: f64, after: &str| IdlePolicy {
            gpu_below: below,
            after: after.into(),
            action: None,
        };
        let rule = IdleRule::of(&policy(10.0, "2h")).unwrap();
        assert_eq!((rule.after_s, rule.action), (7_200, AtExpiry::Suspend));
        let problems = IdleRule::of(&policy(0.0, "7h")).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.0).collect();
        assert_eq!(fields, ["gpuBelow", "after"]);
        assert!(problems[1].1.contains("from 1m to 6h"), "{problems:?}");
        assert!(IdleRule::of(&policy(f64::NAN, "1h")).is_err());
        assert!(IdleRule::of(&policy(10.0, "30s")).is_err(), "shorter than a minute");

        // The annotation a launch stamps; a garbled one reclaims nothing.
        let stamped = BTreeMap::from([(
            ANNOTATION_IDLE.to_owned(),
            r#"{"gpuBelow":10.0,"after":"2h","action":"teardown"}"#.to_owned(),
        )]);
        let read = Lifetime::of(Some(&stamped));
        assert_eq!(read.idle.map(|r| r.action), Some(AtExpiry::TearDown));
        assert!(read.bounded());
        let garbled = BTreeMap::from([(ANNOTATION_IDLE.to_owned(), "2h".to_owned())]);
        assert_eq!(Lifetime::of(Some(&garbled)).idle, None);

        // Warned 5 minutes before, then acted on at 2 hours; a 1-minute window warns 15 s ahead.
        assert_eq!(rule.due(6_000, 50_000, None), Due::Nothing);
        assert_eq!(rule.due(6_900, 50_000, None), Due::Warn { left: 300, before: 300 });
        assert_eq!(rule.due(6_950, 50_050, Some(50_300)), Due::Nothing);
        assert_eq!(rule.due(7_200, 50_300, Some(50_300)), Due::Act);
        // Found past its window unwarned: warned now, with the whole lead before the act.
        assert_eq!(rule.due(9_000, 60_000, None), Due::Warn { left: 300, before: 300 });
        let minute = IdleRule::of(&policy(10.0, "1m")).unwrap();
        assert_eq!(minute.due(45, 1_000, None), Due::Warn { left: 15, before: 15 });
    }

    #[test]
    fn jobs_leave_a_cluster_quiet_from_the_last_ones_end() {
        let job = |status: &str, end_ms: Option<i64>| RayJob {
            status: status.into(),
            end_time: end_ms,
            ..RayJob::default()
        };
        assert_eq!(jobs_quiet_since(&[]), Some(0), "none ever ran");
        let done = [job("SUCCEEDED", Some(5_000_000)), job("FAILED", Some(7_000_000))];
        assert_eq!(jobs_quiet_since(&done), Some(7_000));
        assert_eq!(jobs_quiet_since(&[done[0].clone(), job("PENDING", None)]), None);
        assert_eq!(jobs_quiet_since(&[job("RUNNING", None)]), None);
    }

    #[test]
    fn a_lease_lapses_after_its_timeout_unless_protected() {
        let leased = Lifetime { lease_renewed_at: Some(1_000), expires_at: None, ..lifetime(0) };
        let five = Duration::from_secs(300);
        assert!(!lease_lapsed(&leased, 1_300, five), "renewed exactly five minutes ago");
        assert!(lease_lapsed(&leased, 1_301, five));
        assert!(!lease_lapsed(&Lifetime { protected: true, ..leased.clone() }, 9_999, five));
        assert!(!lease_lapsed(&lifetime(0), 9_999, five), "no lease, no lapse");
    }

    #[test]
    fn annotations_say_the_lifetime_and_a_bad_time_is_no_expiry() {
        let annotations = BTreeMap::from([
            (ANNOTATION_EXPIRES_AT.to_owned(), "2026-12-06T22:00:00Z".to_owned()),
            (ANNOTATION_AT_EXPIRY.to_owned(), "suspend".to_owned()),
        ]);
        let read = Lifetime::of(Some(&annotations));
        assert_eq!(read.expires_at, Some(1_796_594_400));
        assert_eq!(read.at_expiry, AtExpiry::Suspend);
        assert!(!read.protected);
        let garbled = BTreeMap::from([(ANNOTATION_EXPIRES_AT.to_owned(), "tomorrow".to_owned())]);
        assert_eq!(Lifetime::of(Some(&garbled)).expires_at, None);
        let protected = BTreeMap::from([(ANNOTATION_PROTECT.to_owned(), "true".to_owned())]);
        assert!(Lifetime::of(Some(&protected)).protected);
        assert_eq!(Lifetime::of(None).at_expiry, AtExpiry::TearDown);
    }

    #[test]
    fn warnings_come_once_each_then_the_action() {
        let l = lifetime(10_000);
        assert_eq!(due(&l, 10_000 - 3_600, &[]), Due::Nothing);
        assert_eq!(due(&l, 10_000 - 1_800, &[]), Due::Warn { left: 1_800, before: 1_800 });
        assert_eq!(due(&l, 10_000 - 1_000, &[1_800]), Due::Nothing);
        assert_eq!(due(&l, 10_000 - 300, &[1_800]), Due::Warn { left: 300, before: 300 });
        assert_eq!(due(&l, 10_000 - 10, &[1_800, 300]), Due::Nothing);
        assert_eq!(due(&l, 10_000, &[1_800, 300]), Due::Act);
        // Launched with four minutes to live: one warning, the last.
        assert_eq!(due(&l, 10_000 - 240, &[]), Due::Warn { left: 240, before: 300 });
        let protected = Lifetime { protected: true, ..l };
        assert_eq!(due(&protected, 20_000, &[]), Due::Nothing);
    }

    #[test]
    fn an_extension_stays_within_the_templates_maximum_lifetime() {
        let hour = Duration::from_secs(3_600);
        let now = 100_000;
        assert_eq!(extended(Some(now + 600), hour, 8 * hour, now), Ok(now + 600 + 3_600));
        // Expired already: from now.
        assert_eq!(extended(Some(now - 50), hour, 8 * hour, now), Ok(now + 3_600));
        let refused = extended(Some(now + 7 * 3_600), 2 * hour, 8 * hour, now).unwrap_err();
        assert_eq!(
            refused,
            "would end 9h from now, past its template's maximum lifetime of 8h: extend by at most 1h"
        );
        assert!(extended(Some(now), Duration::ZERO, hour, now).is_err());
        // Just launched: it lives to its maximum already.
        let full = extended(Some(now + 8 * 3_600), hour, 8 * hour, now).unwrap_err();
        assert!(
            full.starts_with("it already lives to its template's maximum lifetime of 8h"),
            "{full}"
        );
        assert_eq!(human(5_430), "1h30m30s");
    }
}
