//! Ray dashboard answers (ray 2.60's JSON) read into what raydar shows: a cluster's nodes and
//! jobs ([`RayNode`], [`RayJob`]) and a job's status.

use serde_json::Value;

use crate::overview::{RayJob, RayNode};

/// Longest job id raydar sends in a path: Ray's submission ids are `raysubmit_` and 16
/// characters.
pub const MAX_JOB_ID: usize = 128;

/// What is wrong with `id` as a Ray job or submission id in a dashboard path, if anything: only
/// letters, digits, `_` and `-`, so nothing can leave the path.
pub fn job_id_problem(id: &str) -> Option<String> {
    let valid = !id.is_empty()
        && id.len() <= MAX_JOB_ID
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!valid).then(|| {
        format!("{id:?} is not a Ray job id (letters, digits, '_' and '-', at most {MAX_JOB_ID})")
    })
}

/// `GET /nodes?view=summary`: `{"data": {"summary": [{ip, cpu, mem: [total, available, percent,
/// used], raylet: {isHeadNode, state, resourcesTotal: {CPU, GPU}}}]}}`.
pub fn nodes(body: &str) -> Result<Vec<RayNode>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Ray's node summary is not JSON: {e}"))?;
    let summary = value
        .pointer("/data/summary")
        .and_then(Value::as_array)
        .ok_or("Ray's node summary has no data.summary list")?;
    let mut nodes: Vec<RayNode> = summary
        .iter()
        .map(|node| {
            let raylet = &node["raylet"];
            let mem = |i: usize| node["mem"].get(i).and_then(Value::as_u64).unwrap_or(0);
            RayNode {
                ip: node["ip"].as_str().unwrap_or_default().to_owned(),
                head: raylet["isHeadNode"].as_bool().unwrap_or(false),
                state: raylet["state"].as_str().unwrap_or("UNKNOWN").to_owned(),
                cpu_percent: node["cpu"].as_f64().unwrap_or(0.0),
                cpus: raylet.pointer("/resourcesTotal/CPU").and_then(Value::as_f64).unwrap_or(0.0),
                gpus: raylet.pointer("/resourcesTotal/GPU").and_then(Value::as_f64).unwrap_or(0.0),
                memory_used: mem(3),
                memory_total: mem(0),
            }
        })
        .collect();
    nodes.sort_by(|a, b| (!a.head, &a.ip).cmp(&(!b.head, &b.ip)));
    Ok(nodes)
}

/// `GET /api/jobs/`: a plain list (no envelope) of Ray's job details.
pub fn jobs(body: &str) -> Result<Vec<RayJob>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Ray's job list is not JSON: {e}"))?;
    let list = value.as_array().ok_or("Ray's job list is not a list")?;
    let mut jobs: Vec<RayJob> = list.iter().filter_map(job_of).collect();
    jobs.sort_by(|a, b| b.start_time.cmp(&a.start_time).then_with(|| a.id.cmp(&b.id)));
    Ok(jobs)
}

/// `GET /api/jobs/{id}`: one job's details.
pub fn job(body: &str) -> Result<RayJob, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("Ray's job details are not JSON: {e}"))?;
    job_of(&value).ok_or_else(|| "Ray's job details name no job".into())
}

/// One of Ray's job details, if it names a job.
fn job_of(job: &Value) -> Option<RayJob> {
    let text = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    let (job_id, submission_id) = (text(&job["job_id"]), text(&job["submission_id"]));
    // Submitted jobs are read by submission id; a driver started by hand has only a job id.
    let id = submission_id.clone().or_else(|| job_id.clone())?;
    Some(RayJob {
        id,
        job_id,
        submission_id,
        status: text(&job["status"]).unwrap_or_else(|| "PENDING".into()),
        entrypoint: text(&job["entrypoint"]).unwrap_or_default(),
        message: text(&job["message"]),
        start_time: job["start_time"].as_i64().filter(|t| *t > 0),
        end_time: job["end_time"].as_i64().filter(|t| *t > 0),
    })
}

/// The `status` of Ray's answer to `GET /api/jobs/{id}`.
pub fn job_status(body: &str) -> Option<String> {
    let job: Value = serde_json::from_str(body).ok()?;
    job["status"].as_str().map(str::to_owned)
}

/// Whether a Ray job status is final.
pub fn is_terminal(status: &str) -> bool {
    ["SUCCEEDED", "FAILED", "STOPPED"].contains(&status)
}

/// The `type` of Ray's answer to `GET /api/jobs/{id}` when it is not a submitted job (`DRIVER`):
/// Ray keeps logs of submitted jobs only.
pub fn unsubmitted_kind(body: &str) -> Option<String> {
    let job: Value = serde_json::from_str(body).ok()?;
    job["type"].as_str().filter(|t| *t != "SUBMISSION").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = include_str!("../tests/fixtures/ray-2.60/nodes-summary.json");
    const JOBS: &str = include_str!("../tests/fixtures/ray-2.60/jobs.json");

    #[test]
    fn ray_260_nodes_read_as_the_page_shows_them() {
        let nodes = nodes(NODES).unwrap();
        assert_eq!(nodes.len(), 1);
        let head = &nodes[0];
        assert_eq!(
            (head.ip.as_str(), head.head, head.state.as_str()),
            ("10.245.0.3", true, "ALIVE")
        );
        assert_eq!((head.cpus, head.gpus), (1.0, 0.0));
        assert_eq!((head.memory_total, head.memory_used), (25_276_063_744, 2_599_096_320));
        assert!((head.cpu_percent - 99.8).abs() < 1e-9);
    }

    #[test]
    fn ray_260_jobs_read_newest_first_by_submission_id() {
        let jobs = jobs(JOBS).unwrap();
        let seen: Vec<(&str, &str)> =
            jobs.iter().map(|j| (j.id.as_str(), j.status.as_str())).collect();
        assert_eq!(
            seen,
            [
                ("fixture-failed", "FAILED"),
                ("fixture-running", "RUNNING"),
                ("fixture-ok", "SUCCEEDED")
            ]
        );
        let running = &jobs[1];
        assert_eq!((running.start_time, running.end_time), (Some(1_795_697_696_343), None));
        assert!(jobs[0].message.as_deref().unwrap().contains("exit code 3"));
    }

    #[test]
    fn answers_that_are_not_rays_are_errors_not_panics() {
        assert!(nodes("<html>").unwrap_err().contains("not JSON"));
        assert!(nodes("{\"data\": {}}").unwrap_err().contains("data.summary"));
        assert!(jobs("{\"jobs\": []}").unwrap_err().contains("not a list"));
        assert_eq!(
            jobs("[{\"status\": \"RUNNING\"}]").unwrap(),
            Vec::new(),
            "a job without an id is skipped"
        );
    }

    #[test]
    fn a_job_status_and_kind_are_read_from_rays_answer() {
        assert_eq!(
            job_status(r#"{"status": "RUNNING", "type": "SUBMISSION"}"#).as_deref(),
            Some("RUNNING")
        );
        assert_eq!(job_status("<html>"), None);
        assert!(is_terminal("STOPPED") && !is_terminal("RUNNING"));
        assert_eq!(unsubmitted_kind(r#"{"type": "SUBMISSION"}"#), None);
        assert_eq!(unsubmitted_kind(r#"{"type": "DRIVER"}"#).as_deref(), Some("DRIVER"));
    }
}
