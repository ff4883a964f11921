//! What raydar measures of itself for `/metrics` besides the gauges read from its stores:
//! histograms of durations by label (a request by its route template, a database call by what
//! it does) and counters by label, each bounded in the label sets it keeps, written in
//! Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds of the buckets, in seconds: Prometheus' defaults, and 30 s for a slow list.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Most label sets one metric keeps; observations of any other go to one `overflow` set. Label
/// values here come from fixed sets (route templates, statements), so this is a guard only.
const MAX_SERIES: usize = 500;
const OVERFLOW: &str = "overflow=\"true\"";

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Observations at or under each bucket's bound (not cumulative; summed when written).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Durations by label set: cheap to clone.
#[derive(Clone, Default)]
pub struct Histograms {
    series: Arc<Mutex<BTreeMap<String, Histogram>>>,
}

impl Histograms {
    /// Records `took` under `labels` (`name="value",...`, values escaped by [`label`]).
    pub fn observe(&self, labels: String, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let key = match series.len() < MAX_SERIES || series.contains_key(&labels) {
            true => labels,
            false => OVERFLOW.to_owned(),
        };
        let h = series.entry(key).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            h.buckets[bucket] += 1;
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Runs `call`, recording how long it took under `labels`.
    pub async fn time<T>(&self, labels: String, call: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let result = call.await;
        self.observe(labels, start.elapsed());
        result
    }

    /// Writes every series as the histogram `name`.
    pub fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (labels, h) in series {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
    }
}

/// Counts by label value: cheap to clone. The values are the program's own (`&'static str`),
/// so the set is bounded by the code.
#[derive(Clone, Default)]
pub struct Counters {
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Counters {
    /// Adds one under `value`.
    pub fn add(&self, value: &'static str) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(value).or_default() += 1;
    }

    /// Writes every count as the counter `name`, its value in label `label`.
    pub fn write(&self, out: &mut String, name: &str, help: &str, label: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (value, n) in self.counts.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(value));
        }
    }
}

/// `name="value"`, the value escaped as the text format wants.
pub fn label(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", escape(value))
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// How long answering took, by method, route template and status class: what
/// `raydar_http_request_duration_seconds` shows.
#[derive(Clone, Default)]
pub struct RequestTimes(pub Histograms);

/// Middleware: times each request until its answer's head is ready (an event stream's open,
/// not its life), under the route it matched (`/api/v1/clusters/{namespace}/{name}`, never the
/// path asked for: the label sets stay the routes').
pub async fn time_requests(
    State(times): State<RequestTimes>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    const METHODS: [Method; 7] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = match METHODS.contains(request.method()) {
        true => request.method().as_str().to_owned(),
        false => "other".to_owned(),
    };
    let start = Instant::now();
    let response = next.run(request).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    let labels =
        [label("method", &method), label("route", &route), label("status", &status)].join(",");
    times.0.observe(labels, start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_written_cumulative_with_its_count_and_sum() {
        let h = Histograms::default();
        h.observe(label("op", "read"), Duration::from_millis(3));
        h.observe(label("op", "read"), Duration::from_millis(300));
        h.observe(label("op", "read"), Duration::from_secs(60));
        let mut out = String::new();
        h.write(&mut out, "t_seconds", "Test.");
        assert!(out.contains("# TYPE t_seconds histogram"), "{out}");
        assert!(out.contains("t_seconds_bucket{op=\"read\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{op=\"read\",le=\"0.25\"} 1\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{op=\"read\",le=\"0.5\"} 2\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{op=\"read\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("t_seconds_bucket{op=\"read\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("t_seconds_count{op=\"read\"} 3\n"), "{out}");
        assert!(out.contains("t_seconds_sum{op=\"read\"} 60.303"), "{out}");
    }

    #[test]
    fn label_sets_are_bounded_and_values_escaped() {
        let h = Histograms::default();
        for i in 0..MAX_SERIES + 50 {
            h.observe(label("route", &format!("/r{i}")), Duration::from_millis(1));
        }
        let mut out = String::new();
        h.write(&mut out, "t", "Test.");
        assert_eq!(out.matches("t_count{").count(), MAX_SERIES + 1);
        assert!(out.contains("t_count{overflow=\"true\"} 50"), "{out}");
        assert_eq!(label("q", "a\"b\\c\nd"), "q=\"a\\\"b\\\\c\\nd\"");
    }
}
