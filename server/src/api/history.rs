//! History: past and present clusters (`GET /api/v1/history/clusters`), one cluster's record
//! by uid (`GET /api/v1/history/clusters/{uid}`) and its jobs' archived logs (`…/jobs/{job_id}/log`,
//! a download, and `…/log/stream`, the live viewer's events), read from raydar's own database,
//! so they answer after the cluster is gone. Reads follow the live rule: a cluster is shown to those who
//! may list RayClusters in its namespace.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use platform::history::{ArchiveState, ClusterRecord, HistoryPage, Outcome, PastCluster, PastJob};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::logs::{Resume, ResumeHeader, ResumeQuery};
use crate::history::archive::unpack;
use crate::logs::{Step, BATCH_LINES};
use crate::push;

use super::clusters::{ContextQuery, ALL_CONTEXTS};
use crate::contexts::Fleet;
use crate::error::{ApiError, ApiResult};
use crate::extract::{check_cluster, Path, Query};
use crate::history::store::{Cursor, Kind, ListFilter, Readable};
use crate::history::History;
use crate::security::access::may_not_read;
use crate::security::{Access, User};
use crate::sources::Clusters;

/// Most clusters on one page of the history list.
const MAX_LIMIT: usize = 500;
/// Most events a record carries (the newest).
const MAX_EVENTS: usize = 1000;

/// Query of `GET /api/v1/history/clusters`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this team's clusters (`raydar.dev/team`).
    #[param(max_length = 63, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    team: Option<String>,
    /// Only clusters launched by this user (`raydar.dev/owner`).
    #[param(max_length = 63, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    owner: Option<String>,
    /// Only clusters from this template.
    #[param(max_length = 253, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    template: Option<String>,
    /// Only this namespace's clusters.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length = 63)]
    namespace: Option<String>,
    /// Only clusters that ended so (or `live`).
    #[param(inline)]
    outcome: Option<Outcome>,
    /// Only clusters that lived at some time since this, Unix seconds.
    #[param(minimum = 0)]
    since: Option<i64>,
    /// Only clusters made by this time, Unix seconds.
    #[param(minimum = 0)]
    until: Option<i64>,
    /// Words, each looked for in the name, owner, team, template, pipeline, run and RayJob.
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    q: Option<String>,
    /// Only clusters made for RayJobs (`rayjob`), or only those launched on their own
    /// (`cluster`); empty: both.
    #[param(pattern = "^(cluster|rayjob)?$")]
    kind: Option<String>,
    /// The `next` of the page before.
    #[param(pattern = r"^[0-9]{1,18}\.[0-9a-fA-F-]{1,64}$")]
    after: Option<String>,
    /// Clusters on the page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

impl HistoryQuery {
    /// The filter it asks for, or 400 naming the field that cannot be one.
    fn filter(&self) -> ApiResult<ListFilter> {
        let text = |field: &str, value: &Option<String>, max: usize| -> ApiResult<Option<String>> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if v.chars().count() > max => Err(ApiError::invalid_field(
                    field,
                    format!("is {} characters, at most {max} are allowed", v.chars().count()),
                )),
                Some(v) if v.chars().any(char::is_control) => {
                    Err(ApiError::invalid_field(field, "must not contain control characters"))
                }
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
        if let Some(namespace) = &self.namespace {
            check_cluster(namespace, "x")?;
        }
        for (field, time) in [("since", self.since), ("until", self.until)] {
            if time.is_some_and(|t| t < 0) {
                return Err(ApiError::invalid_field(field, "must be Unix seconds, 0 or more"));
            }
        }
        let kind = match self.kind.as_deref() {
            None | Some("") => None,
            Some("cluster") => Some(Kind::Cluster),
            Some("rayjob") => Some(Kind::RayJob),
            Some(_) => return Err(ApiError::invalid_field("kind", "must be cluster or rayjob")),
        };
        Ok(ListFilter {
            kind,
            team: text("team", &self.team, 63)?,
            owner: text("owner", &self.owner, 63)?,
            template: text("template", &self.template, 253)?,
            namespace: self.namespace.clone(),
            outcome: self.outcome,
            since: self.since,
            until: self.until,
            text: text("q", &self.q, 200)?,
        })
    }
}

/// `GET /api/v1/history/clusters`: clusters past and present that the requester may read,
/// newest first, filtered, a page at a time.
#[utoipa::path(get, path = "/history/clusters", tag = "history",
    params(HistoryQuery, super::clusters::ContextQuery),
    responses(
        (status = 200, description = "A page of clusters, newest first", body = HistoryPage),
        (status = 400, description = "A filter cannot be one", body = ApiError),
        (status = 404, description = "No Kubernetes cluster is called `context` here", body = ApiError),
        (status = 422, description = "A filter is out of range", body = ApiError),
        (status = 503, description = "The history database does not answer", body = ApiError)))]
pub async fn list(
    State(history): State<History>,
    State(access): State<Access>,
    State(clusters): State<Clusters>,
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    Query(query): Query<HistoryQuery>,
    Query(of): Query<ContextQuery>,
) -> ApiResult<Json<HistoryPage>> {
    let filter = query.filter()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    let cursor = match query.after.as_deref() {
        None => None,
        Some(after) => Some(Cursor::parse(after).ok_or_else(|| {
            ApiError::invalid_field("after", "is not the `next` of a history page")
        })?),
    };
    let store = &history.store;
    let mut namespaces = store.namespaces().await.map_err(unavailable)?;
    if let Some(only) = &filter.namespace {
        namespaces.retain(|ns| ns == only);
    }
    // Each Kubernetes cluster's clusters as its RBAC lets the user see them: this one's, or
    // (`context=*`) every one's.
    let readable = match (of.context.as_deref(), fleet.planes()) {
        (Some(ALL_CONTEXTS), planes) => {
            let (fleet, user) = (&fleet, &user);
            let each = planes.iter().map(|plane| {
                let namespaces = namespaces.clone();
                async move {
                    let name = fleet.history_name(&plane.name).to_owned();
                    (name, plane.access_now().readable(user, namespaces).await)
                }
            });
            Readable::ByContext(futures::future::join_all(each).await)
        }
        (_, [_, _, ..]) => {
            let name = fleet.history_name(clusters.context()).to_owned();
            Readable::ByContext(vec![(name, access.readable(&user, namespaces).await)])
        }
        _ => Readable::Anywhere(access.readable(&user, namespaces).await),
    };
    let (mut items, next) =
        store.list(&filter, readable, cursor.as_ref(), limit).await.map_err(unavailable)?;
    for item in &mut items {
        item.context = fleet.shown(&item.context);
    }
    Ok(Json(HistoryPage {
        items,
        next: next.map(|c| c.encode()),
        stale: history.sink.stale(),
        lost: history.sink.lost(),
    }))
}

/// `GET /api/v1/history/clusters/{uid}`: everything kept of one cluster, live or gone: how it
/// was launched, its phases, its events, how it ended.
#[utoipa::path(get, path = "/history/clusters/{uid}", tag = "history",
    params(("uid" = String, Path, description = "The cluster's Kubernetes uid",
        pattern = "^[0-9a-fA-F-]{1,64}$", max_length = 64)),
    responses(
        (status = 200, description = "The cluster's record", body = ClusterRecord),
        super::doc::HistoryErrors))]
pub async fn record(
    State(history): State<History>,
    State(access): State<Access>,
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    Path(uid): Path<String>,
) -> ApiResult<Json<ClusterRecord>> {
    check_uid(&uid)?;
    let record = history.store.record(&uid, MAX_EVENTS).await.map_err(unavailable)?;
    let mut record = record
        .ok_or_else(|| ApiError::not_found(format!("history has no cluster of uid {uid}")))?;
    may_read(&fleet, &access, &user, &record.cluster).await?;
    record.cluster.context = fleet.shown(&record.cluster.context);
    Ok(Json(record))
}

/// Whether `user` may read what history kept of `cluster`: if they may list RayClusters in its
/// namespace on its Kubernetes cluster (by that cluster's RBAC; by the answering one's for a
/// cluster raydar no longer serves).
async fn may_read(
    fleet: &Fleet,
    access: &Access,
    user: &User,
    cluster: &PastCluster,
) -> ApiResult<()> {
    let access = fleet.by_history_name(&cluster.context).map_or(access, |plane| &plane.access);
    let namespace = &cluster.namespace;
    match access.readable(user, [namespace.clone()]).await.contains(namespace) {
        true => Ok(()),
        false => Err(may_not_read(user, "RayClusters", namespace)),
    }
}

/// A cluster uid and a job id in a history path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the derive only
pub struct JobInHistory {
    /// The cluster's Kubernetes uid.
    #[param(pattern = "^[0-9a-fA-F-]{1,64}$", max_length = 64)]
    uid: String,
    /// The job's submission id (or job id).
    #[param(pattern = "^[A-Za-z0-9_-]+$", max_length = 128)]
    job_id: String,
}

/// Chunks read from the database at a time while a log is sent.
const CHUNKS_AT_ONCE: usize = 8;

/// The archived job `job` of cluster `uid`, if the requester may read the cluster's namespace.
async fn archived_job(
    history: &History,
    (fleet, access): (&Fleet, &Access),
    user: &User,
    (uid, job): (&str, &str),
) -> ApiResult<PastJob> {
    check_uid(uid)?;
    if let Some(problem) = platform::dashboard::job_id_problem(job) {
        return Err(ApiError::bad_request(problem));
    }
    let cluster = history.store.cluster(uid).await.map_err(unavailable)?;
    let cluster = cluster
        .ok_or_else(|| ApiError::not_found(format!("history has no cluster of uid {uid}")))?;
    may_read(fleet, access, user, &cluster).await?;
    let namespace = &cluster.namespace;
    let found = history.store.job(uid, job).await.map_err(unavailable)?;
    found.ok_or_else(|| {
        ApiError::not_found(format!(
            "history has no job {job} of cluster {}/{}",
            namespace, cluster.name
        ))
    })
}

/// The archived log of one job from line `from`, chunk by chunk, as the database gives it.
fn archived_lines(
    history: History,
    (uid, job): (String, String),
    from: u64,
) -> impl futures::Stream<Item = Result<(u64, String), String>> {
    futures::stream::try_unfold((history, from, Vec::new()), move |(history, from, mut left)| {
        let (uid, job) = (uid.clone(), job.clone());
        async move {
            if left.is_empty() {
                left = history.store.log_chunks(&uid, &job, from, CHUNKS_AT_ONCE).await?;
                left.reverse();
            }
            let Some(chunk) = left.pop() else { return Ok(None) };
            let text = unpack(&chunk.data)?;
            let next = chunk.first_line + chunk.lines;
            Ok(Some(((chunk.first_line, text), (history, next, left))))
        }
    })
}

/// `GET /api/v1/history/clusters/{uid}/jobs/{job_id}/log`: a job's archived driver log, as a
/// download; it works after the cluster is gone.
#[utoipa::path(get, path = "/history/clusters/{uid}/jobs/{job_id}/log", tag = "history",
    params(JobInHistory),
    responses(
        (status = 200, description = "The archived log, as an attachment", content_type = "text/plain", body = String),
        super::doc::HistoryErrors))]
pub async fn job_log(
    State(history): State<History>,
    State(access): State<Access>,
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    Path((uid, job)): Path<(String, String)>,
) -> ApiResult<Response> {
    archived_job(&history, (&fleet, &access), &user, (&uid, &job)).await?;
    let file = format!("{}-{job}.log", &uid[..uid.len().min(8)]);
    let body = archived_lines(history, (uid, job), 1)
        .map(|chunk| chunk.map(|(_, text)| text).map_err(std::io::Error::other));
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// `GET /api/v1/history/clusters/{uid}/jobs/{job_id}/log/stream`: a job's archived driver log as
/// the live log's server-sent events (`lines`, then `end` saying how complete it is), so the
/// same viewer shows it.
#[utoipa::path(
    get,
    path = "/history/clusters/{uid}/jobs/{job_id}/log/stream",
    tag = "history",
    params(JobInHistory, ResumeQuery, ResumeHeader),
    responses(super::doc::LogStream, super::doc::HistoryErrors)
)]
pub async fn job_log_stream(
    State(history): State<History>,
    State(access): State<Access>,
    State(fleet): State<Fleet>,
    State(shutdown): State<CancellationToken>,
    Extension(user): Extension<User>,
    Path((uid, job)): Path<(String, String)>,
    Resume(after): Resume,
) -> ApiResult<Response> {
    let past = archived_job(&history, (&fleet, &access), &user, (&uid, &job)).await?;
    let end = match past.log.state {
        ArchiveState::None => "history has no log of this job".to_owned(),
        ArchiveState::Archiving => format!(
            "{} lines archived so far; the job is still running (its live log has the rest)",
            past.log.lines
        ),
        ArchiveState::Complete => format!("the whole log as archived, {} lines", past.log.lines),
        ArchiveState::Cut | ArchiveState::Partial => {
            format!("history kept {} lines: {}", past.log.lines, past.log.note)
        }
    };
    let from = after.saturating_add(1);
    let lines = archived_lines(history, (uid, job), from).flat_map(move |chunk| {
        let steps: Vec<Step> = match chunk {
            Ok((first, text)) => {
                let lines: Vec<Arc<str>> = text.lines().map(Arc::from).collect();
                // Only the lines after the one the viewer has.
                let skip = from.saturating_sub(first) as usize;
                let first = first.max(from);
                lines
                    .get(skip..)
                    .unwrap_or_default()
                    .chunks(BATCH_LINES)
                    .enumerate()
                    .map(|(i, batch)| Step::Lines {
                        first: first + (i * BATCH_LINES) as u64,
                        lines: batch.to_vec(),
                    })
                    .collect()
            }
            Err(e) => vec![Step::Problem(e)],
        };
        futures::stream::iter(steps)
    });
    let events = lines
        .chain(futures::stream::once(async move { Step::End(end) }))
        .map(|step| Ok::<_, std::convert::Infallible>(step.event()));
    Ok(push::stream(events, &shutdown))
}

fn check_uid(uid: &str) -> ApiResult<()> {
    if uid.is_empty() || uid.len() > 64 || !uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::bad_request(format!(
            "{uid:?} is not a Kubernetes uid (hexadecimal digits and -, at most 64)"
        )));
    }
    Ok(())
}

fn unavailable(reason: String) -> ApiError {
    ApiError::unavailable(format!("history is unavailable: {reason}"))
}
