//! The pages' side of the server: what Leptos pages and server functions find in context (the
//! directory of clusters and templates, who is asking, the page's script policy), worked out
//! from the requester's grants.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use app::api::ssr::{ClusterDirectory, Directory};
use app::api::{ClusterList, LaunchForms, PageContext, Session};
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kube::Client;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{handle_server_fns_with_context, ResponseOptions};
use platform::ClusterDetail;

use super::clusters::{ContextQuery, ListQuery, ALL_CONTEXTS};
use super::contexts::{every_page, list_page, states};
use super::gpus::{fleet_for, with_totals, Gpus};
use crate::contexts::Fleet;
use crate::security::headers::page_policy;
use crate::security::{CsrfKey, Grants, User};
use crate::sources::{Clusters, Templates};

/// What pages read: cheap to clone.
#[derive(Clone)]
pub struct Pages {
    /// The watched clusters.
    pub clusters: Clusters,
    /// The watched templates.
    pub templates: Templates,
    /// GPU use, for the fleet page.
    pub gpus: Gpus,
    /// Signs the CSRF token each page carries.
    pub csrf: CsrfKey,
    /// raydar's own client: the launch form's default namespace is its context's.
    pub kube: Client,
    /// Every Kubernetes cluster served: the list says which it can show.
    pub fleet: Fleet,
}

impl Pages {
    /// What pages and server functions find in context: the directory, who is asking (and
    /// their CSRF token), and the page's Content-Security-Policy with this response's script
    /// nonce.
    pub fn provide(&self) -> impl Fn() + Clone + Send + 'static {
        let directory = Directory(Arc::new(self.clone()));
        let csrf = self.csrf.clone();
        move || {
            provide_context(directory.clone());
            let parts = use_context::<axum::http::request::Parts>();
            let query = parts.as_ref().and_then(|p| p.uri.query()).unwrap_or_default();
            provide_context(PageContext(PageContext::of(query)));
            if let Some(user) = parts.as_ref().and_then(|p| p.extensions.get::<User>()) {
                provide_context(Session {
                    user: user.name.clone(),
                    team: user.team(),
                    csrf: csrf.token(user),
                });
            }
            if let (Some(nonce), Some(response)) =
                (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
            {
                if let Ok(policy) = axum::http::HeaderValue::from_str(&page_policy(&nonce)) {
                    response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
                }
            }
        }
    }
}

/// The grants of the request being rendered: none when the grants layer did not run.
fn grants() -> Grants {
    use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<Grants>().cloned())
        .unwrap_or_default()
}

/// What pages read: the watched clusters and templates, as far as the requester may see them.
impl ClusterDirectory for Pages {
    fn cluster_list(&self) -> ClusterList {
        let parts = use_context::<axum::http::request::Parts>();
        let uri = parts.as_ref().map(|p| p.uri.clone()).unwrap_or_default();
        let query = match ListQuery::of(&uri) {
            Ok(query) => query,
            Err(e) => return ClusterList { error: Some(e.error), ..ClusterList::default() },
        };
        // The page's links keep the Kubernetes cluster it shows.
        let mut pairs = query.pairs();
        let of = axum::extract::Query::<ContextQuery>::try_from_uri(&uri).map(|q| q.0.context);
        if let Ok(Some(context)) = of {
            pairs += &format!("context\t{context}\n");
        }
        let view = match query.view() {
            Ok(view) => view,
            Err(e) => {
                return ClusterList { error: Some(e.error), view: pairs, ..ClusterList::default() }
            }
        };
        let every = parts.as_ref().and_then(|p| p.extensions.get::<EveryContext>());
        let mut list = match every {
            Some(EveryContext(list)) => list.clone(),
            None => {
                let page = self.clusters.page(&view, &grants());
                list_page(page, self.clusters.stale(), &states(&self.fleet))
            }
        };
        list.view = pairs;
        list
    }

    fn cluster_detail(&self, namespace: &str, name: &str) -> Option<ClusterDetail> {
        let grants = grants();
        if !grants.read.contains(namespace) {
            return None;
        }
        let mut detail = self.clusters.detail(namespace, name)?;
        detail.may_change = grants.change.contains(namespace);
        detail.summary.may_delete = grants.delete.contains(namespace);
        Some(detail)
    }

    fn fleet(&self) -> Pin<Box<dyn Future<Output = platform::utilization::Fleet> + Send>> {
        let readable: BTreeSet<String> = grants().read;
        let fleet = fleet_for(&self.gpus, &readable);
        let user = use_context::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<User>().cloned());
        let every = self.fleet.clone();
        Box::pin(async move {
            match user {
                Some(user) => with_totals(fleet, &every, &user).await,
                None => fleet,
            }
        })
    }

    fn launch_forms(&self) -> LaunchForms {
        let session = use_context::<Session>();
        LaunchForms {
            templates: self.templates.forms(),
            owner: session.as_ref().map(|s| s.user.clone()).unwrap_or_default(),
            team: session.map(|s| s.team).unwrap_or_default(),
            // The kubeconfig context's namespace, as kubectl would use it.
            namespace: self.kube.default_namespace().to_owned(),
            context: self.clusters.context().to_owned(),
            contexts: match self.fleet.planes() {
                [_] | [] => Vec::new(),
                planes => planes.iter().map(|p| p.name.clone()).collect(),
            },
        }
    }
}

/// `/_sfn/{fn}`: the server functions pages load their data with.
pub async fn server_fn(State(pages): State<Pages>, request: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(pages.provide(), request).await
}

/// The list of every Kubernetes cluster (`/?context=*`), worked out before the page renders
/// (rendering cannot wait on each cluster's answers to who may see what).
#[derive(Clone)]
struct EveryContext(ClusterList);

/// Layer of `/`: when it asks for every Kubernetes cluster, their merged page
/// ([`every_page`]), for [`ClusterDirectory::cluster_list`] to render.
pub async fn with_every_context(
    State(fleet): State<Fleet>,
    Extension(user): Extension<User>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let uri = request.uri();
    let every = axum::extract::Query::<ContextQuery>::try_from_uri(uri)
        .is_ok_and(|q| q.0.context.as_deref() == Some(ALL_CONTEXTS));
    // A view that is refused is rendered as the refusal, by the page.
    if let Some(view) = every.then(|| ListQuery::of(uri).and_then(ListQuery::view).ok()).flatten() {
        let (page, states) = every_page(&fleet, &user, &view).await;
        request.extensions_mut().insert(EveryContext(list_page(page, None, &states)));
    }
    next.run(request).await
}
