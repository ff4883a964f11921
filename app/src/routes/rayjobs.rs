//! The RayJob list (`/jobs`): every KubeRay RayJob the requester may list, its Ray job's status
//! and the RayJob's progress, its cluster, and its live log. Pushed by the server whenever a
//! RayJob changes; `?namespace=` narrows it to one namespace, `?context=` to one Kubernetes
//! cluster (by default, every one raydar serves: each row then names its own).

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};
use platform::rayjob::{RayJobList, RayJobSummary};
use platform::status::format_age;

use crate::components::stream::{Reconnecting, StreamState};

/// The page.
pub struct RayJobsPage;

#[lazy_route]
impl LazyRoute for RayJobsPage {
    fn data() -> Self {
        RayJobsPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        view! {
            <section class="rayjobs">
                <h1>"Ray jobs"</h1>
                <RayJobsView/>
            </section>
        }
        .into_any()
    }
}

#[component]
fn RayJobsView() -> impl IntoView {
    let list = RwSignal::new(None::<RayJobList>);
    let stream = RwSignal::new(StreamState::Connecting);
    // The server's clock at the last push, advanced by the browser's between pushes.
    let now = RwSignal::new(0_i64);
    #[cfg(feature = "hydrate")]
    {
        let query = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
        // Every Kubernetes cluster's unless the address names one.
        let url = crate::api::rest::in_context(
            format!("{}{query}", crate::api::push::RAYJOBS_PATH),
            crate::api::ALL_CONTEXTS,
        );
        let apply = move |fresh: RayJobList| {
            now.set(fresh.now);
            list.set(Some(fresh));
        };
        crate::live::follow_json(&url, crate::api::push::RAYJOBS, apply, stream);
        crate::http::repeat(1000, || std::future::ready(()), move |()| now.update(|t| *t += 1));
    }
    let now = Signal::from(now);
    view! {
        <Reconnecting stream/>
        {move || match list.get() {
            None => view! { <p class="empty">"Loading RayJobs…"</p> }.into_any(),
            Some(l) if l.items.is_empty() => view! {
                <p class="empty">
                    "No RayJobs you may see. Submit one to a running cluster from the API ("
                    <code>"POST /api/v1/clusters/{namespace}/{name}/jobs"</code> ") or with "
                    <code>"kubectl apply"</code> "."
                </p>
            }.into_any(),
            Some(l) => view! {
                <table class="rayjobs-table">
                    <thead><tr>
                        <th scope="col">"RayJob"</th>
                        {l.items.iter().any(|j| !j.context.is_empty()).then(|| view! { <th scope="col">"Kubernetes"</th> })}
                        <th scope="col">"Cluster"</th>
                        <th scope="col">"Ray job"</th><th scope="col">"Progress"</th>
                        <th scope="col">"Entrypoint"</th><th scope="col">"Owner"</th>
                        <th scope="col" class="num">"Age"</th><th scope="col">"Log"</th>
                    </tr></thead>
                    <tbody>{
                        let several = l.items.iter().any(|j| !j.context.is_empty());
                        l.items.into_iter().map(|job| row(job, several, now)).collect_view()
                    }</tbody>
                </table>
            }.into_any(),
        }}
    }
}

/// A RayJob's row; `several`: the list spans Kubernetes clusters, and the row names its own.
fn row(job: RayJobSummary, several: bool, now: Signal<i64>) -> impl IntoView {
    use crate::api::rest::in_context;
    let id = format!("{}/{}", job.namespace, job.name);
    let context = several.then(|| view! { <td class="context">{job.context.clone()}</td> });
    let cluster = (!job.cluster.is_empty()).then(|| {
        let href = in_context(crate::api::rest::page(&job.namespace, &job.cluster), &job.context);
        let label =
            if job.ephemeral { format!("{} (its own)", job.cluster) } else { job.cluster.clone() };
        view! { <a href=href>{label}</a> }
    });
    let log = (!job.cluster.is_empty() && !job.job_id.is_empty()).then(|| {
        let href = in_context(
            format!("/clusters/{}/{}/jobs/{}", job.namespace, job.cluster, job.job_id),
            &job.context,
        );
        view! { <a href=href>"Follow"</a> }
    });
    let created = job.created;
    let age = move || format_age(now.get() - created);
    let status = if job.job_status.is_empty() { "—".to_owned() } else { job.job_status.clone() };
    let class = format!("job-{}", job.job_status.to_ascii_lowercase());
    let (data_status, data_progress) = (job.job_status.clone(), job.deployment_status.clone());
    view! {
        <tr data-rayjob=id data-status=data_status data-progress=data_progress>
            <th scope="row">{job.namespace.clone()} " / " {job.name.clone()}</th>
            {context}
            <td>{cluster}</td>
            <td class=class>{status}</td>
            <td title=job.message.clone()>{job.deployment_status.clone()}</td>
            <td class="mono entrypoint" title=job.entrypoint.clone()>{job.entrypoint.clone()}</td>
            <td>{job.owner.clone()}</td>
            <td class="num">{age}</td>
            <td>{log}</td>
        </tr>
    }
}
