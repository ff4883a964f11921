//! The fleet's starts: the clusters waiting now, grouped by what holds them, and how long each
//! template's clusters took to become Ready.

use axum::extract::State;
use axum::{Extension, Json};
use platform::waiting::fleet::{
    group, template_starts, TemplateStarts, WaitingCluster, WaitingGroup,
};
use platform::waiting::objects::cluster_progress;
use platform::waiting::waiting;
use serde::Serialize;
use utoipa::ToSchema;

use crate::history::History;
use crate::overview::Overviews;
use crate::security::{Access, User};
use crate::sources::Clusters;
use crate::unix_now;

/// How far back time to Ready is counted.
pub const READY_WINDOW_DAYS: i64 = 7;
/// Most clusters counted for it (the newest).
const READY_SAMPLES: usize = 20_000;

/// The fleet's starts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Starts {
    /// The server's clock, Unix seconds.
    pub now: i64,
    /// The clusters not started yet, by what holds them: the reasons holding the most first,
    /// those nothing holds (merely on their way) last.
    pub waiting: Vec<WaitingGroup>,
    /// Per template, time from creation to Ready of its clusters of the last
    /// [`READY_WINDOW_DAYS`] days.
    pub templates: Vec<TemplateStarts>,
    /// Why `templates` is empty when history cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_error: Option<String>,
}

/// `GET /api/v1/starts`: the clusters waiting now and why, and time to Ready per template, over
/// the namespaces the requester may read.
#[utoipa::path(get, path = "/starts", tag = "clusters",
    responses((status = 200, description = "Waiting clusters by reason; time to Ready by template", body = Starts)))]
pub async fn starts(
    State(clusters): State<Clusters>,
    State(overviews): State<Overviews>,
    State(history): State<History>,
    State(access): State<Access>,
    Extension(user): Extension<User>,
) -> Json<Starts> {
    let grants = access.grants(&user, clusters.namespaces()).await;
    let now = unix_now();
    // From the watches alone (pods, conditions): no events or dashboards are read for the fleet.
    let judged = clusters
        .starting()
        .into_iter()
        .filter(|(detail, _)| grants.read.contains(&detail.summary.namespace))
        .filter_map(|(detail, conditions)| {
            let s = &detail.summary;
            let cluster = cluster_progress(s, detail.suspend, &conditions, Vec::new(), None);
            let pods = overviews.pods().progress_of(&s.namespace, &s.name);
            let waited = waiting(&cluster, &pods, now)?;
            let row = WaitingCluster {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                template: s.template.clone(),
                owner: s.owner.clone(),
                stage: String::new(),
                since: s.created_at,
                message: String::new(),
            };
            Some((row, waited))
        })
        .collect();
    let since = now - READY_WINDOW_DAYS * 86_400;
    let (templates, history_error) = match history.store.ready_times(since, READY_SAMPLES).await {
        Ok(rows) => {
            let readable = rows.into_iter().filter(|(ns, _, _)| grants.read.contains(ns));
            (template_starts(readable.map(|(_, template, ms)| (template, ms))), None)
        }
        Err(why) => (Vec::new(), Some(format!("history is unavailable: {why}"))),
    };
    Json(Starts { now, waiting: group(judged), templates, history_error })
}
