//! What Kubernetes lets a user see and do: clients that act as the user (impersonation), their
//! answers to SelfSubjectAccessReviews (cached briefly), the grants pages render from, and the
//! extractors that check a read before a handler reads anything.
//!
//! raydar's own credentials read, and impersonate: every action goes to Kubernetes as the user,
//! so RBAC decides and the apiserver's audit log names the person.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Extension;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kube::Client;

use super::identity::User;
use crate::error::ApiError;
use crate::sources::Clusters;

/// One question to Kubernetes' authorizer: may the user `verb` `resource` in `namespace`?
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ask {
    /// `list`, `get`, `create`, `patch`, `update`, `delete`.
    pub verb: &'static str,
    /// API group: `ray.io`, or empty for the core group.
    pub group: &'static str,
    /// `rayclusters`, `pods`.
    pub resource: &'static str,
    /// `log`, or empty.
    pub subresource: &'static str,
    /// The namespace; empty asks about every namespace.
    pub namespace: String,
}

impl Ask {
    /// `verb` on RayClusters in `namespace`.
    pub fn rayclusters(verb: &'static str, namespace: &str) -> Ask {
        Ask {
            verb,
            group: "ray.io",
            resource: "rayclusters",
            subresource: "",
            namespace: namespace.to_owned(),
        }
    }

    /// `verb` on KubeRay RayJobs in `namespace`.
    pub fn rayjobs(verb: &'static str, namespace: &str) -> Ask {
        Ask {
            verb,
            group: "ray.io",
            resource: "rayjobs",
            subresource: "",
            namespace: namespace.to_owned(),
        }
    }

    /// Reading pods' logs in `namespace`.
    pub fn pod_logs(namespace: &str) -> Ask {
        Ask {
            verb: "get",
            group: "",
            resource: "pods",
            subresource: "log",
            namespace: namespace.to_owned(),
        }
    }
}

/// An answer of Kubernetes' authorizer, and when it was given.
type Answer = (bool, Instant);

/// Kubernetes clients acting as users, and their answers about what they may do, cached briefly.
#[derive(Clone)]
pub struct Access {
    /// raydar's own client; requests made as a user go through it with impersonation headers.
    client: Client,
    answers: Arc<Mutex<HashMap<(User, Ask), Answer>>>,
    timeout: Duration,
    /// Whether a question with no fresh answer is put to Kubernetes; when not, the last answer
    /// stands as when Kubernetes cannot be asked ([`Access::remembered`]).
    asks: bool,
    /// Whether Kubernetes answers at all, as the last questions found.
    reach: Arc<Reach>,
}

/// Whether the apiserver answers questions, kept so that while it does not, nobody waits on it:
/// after a question times out or cannot connect, questions are answered from memory and one at
/// a time is put to it in the background, until one is answered.
#[derive(Debug, Default)]
struct Reach {
    /// Set while Kubernetes does not answer.
    unanswered: AtomicBool,
    /// Set while a question is put to it in the background.
    probing: AtomicBool,
}

/// Why a question was not answered.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    /// Kubernetes did not answer in time, or could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// It answered, with an error of its own.
    #[error("{0}")]
    Refused(String),
    /// The question could not be put: a name or group Kubernetes headers cannot carry.
    #[error("{0}")]
    Unaskable(String),
}

impl Access {
    /// How long an answer is reused: a revoked permission stops showing within this time.
    pub const TTL: Duration = Duration::from_secs(10);
    /// How long an answer stands in when Kubernetes cannot be asked again (an apiserver
    /// restarting): people keep seeing what they saw, rather than nothing, for this long.
    pub const KEPT_WHEN_UNREACHABLE: Duration = Duration::from_secs(5 * 60);
    /// Most answers kept; beyond, expired ones are dropped first, then all.
    pub const MAX_ANSWERS: usize = 50_000;

    /// Access through `client` (raydar's own), each question answered within 10 s.
    pub fn new(client: Client) -> Self {
        Access {
            client,
            answers: Arc::default(),
            timeout: Duration::from_secs(10),
            asks: true,
            reach: Arc::default(),
        }
    }

    /// This access, answering from what Kubernetes last said only, as when it cannot be asked:
    /// for a cluster known not to answer, whose every question would wait out the timeout (an
    /// apiserver that drops packets), so that what spans every cluster does not wait on it.
    pub fn remembered(&self) -> Access {
        Access { asks: false, ..self.clone() }
    }

    /// A client that acts as `user`: the apiserver authorizes each request for them and its
    /// audit log names them. Fails for a name or group Kubernetes headers cannot carry.
    pub fn client_for(&self, user: &User) -> Result<Client, String> {
        let mut headers = Vec::with_capacity(1 + user.groups.len());
        let value = |v: &str, what: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                format!("the {what} {v:?} cannot be passed to Kubernetes (not plain ASCII)")
            })
        };
        headers
            .push((HeaderName::from_static("impersonate-user"), value(&user.name, "user name")?));
        for group in &user.groups {
            headers.push((HeaderName::from_static("impersonate-group"), value(group, "group")?));
        }
        let base = self.client.clone();
        let headers = Arc::new(headers);
        let service =
            tower::service_fn(move |mut request: axum::http::Request<kube::client::Body>| {
                let (base, headers) = (base.clone(), headers.clone());
                async move {
                    for (name, value) in headers.iter() {
                        request.headers_mut().append(name.clone(), value.clone());
                    }
                    base.send(request).await
                }
            });
        Ok(Client::new(service, self.client.default_namespace().to_owned()))
    }

    /// Whether `user` may do what `ask` says. When Kubernetes cannot be asked (the apiserver
    /// unreachable), its last answer stands for [`Self::KEPT_WHEN_UNREACHABLE`]; past that, or
    /// for a user it never answered about (or a name it cannot carry), the answer is no: access
    /// fails closed. Once a question found it unreachable, the next ones are answered so at
    /// once, while one at a time is put to it in the background until it answers again.
    pub async fn may(&self, user: &User, ask: &Ask) -> bool {
        let key = (user.clone(), ask.clone());
        let last = self.answers.lock().map(|a| a.get(&key).copied()).ok().flatten();
        if let Some((allowed, at)) = last {
            if at.elapsed() < Self::TTL {
                return allowed;
            }
        }
        // Not renewed: the next request asks again.
        let remembered = || {
            last.is_some_and(|(allowed, at)| allowed && at.elapsed() < Self::KEPT_WHEN_UNREACHABLE)
        };
        if !self.asks {
            return remembered();
        }
        if self.reach.unanswered.load(Ordering::Relaxed) {
            self.probe(user, ask);
            return remembered();
        }
        match self.review(user, ask).await {
            Ok(allowed) => {
                self.remember(key, allowed);
                allowed
            }
            Err(error) => {
                tracing::warn!(user = %user.name, ?ask, "cannot ask Kubernetes whether the user may: {error}");
                if let Unanswered::Unreachable(_) = error {
                    self.reach.unanswered.store(true, Ordering::Relaxed);
                }
                remembered()
            }
        }
    }

    /// Puts `ask` to Kubernetes in the background, unless a question is out already: its answer
    /// is kept, and any answer at all (a refusal too) means Kubernetes answers again.
    fn probe(&self, user: &User, ask: &Ask) {
        if self.reach.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (access, user, ask) = (self.clone(), user.clone(), ask.clone());
        tokio::spawn(async move {
            match access.review(&user, &ask).await {
                Ok(allowed) => {
                    access.reach.unanswered.store(false, Ordering::Relaxed);
                    access.remember((user, ask), allowed);
                }
                Err(Unanswered::Refused(_)) => {
                    access.reach.unanswered.store(false, Ordering::Relaxed)
                }
                Err(Unanswered::Unreachable(_) | Unanswered::Unaskable(_)) => {}
            }
            access.reach.probing.store(false, Ordering::Release);
        });
    }

    /// Keeps Kubernetes' answer to `key`, as of now; bounded ([`Self::MAX_ANSWERS`]).
    fn remember(&self, key: (User, Ask), allowed: bool) {
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= Self::MAX_ANSWERS {
                answers.retain(|_, (_, at)| at.elapsed() < Self::KEPT_WHEN_UNREACHABLE);
                if answers.len() >= Self::MAX_ANSWERS {
                    answers.clear();
                }
            }
            answers.insert(key, (allowed, Instant::now()));
        }
    }

    /// Asks the apiserver, as the user (SelfSubjectAccessReview: any signed-in user may ask about
    /// themselves, so raydar needs no permission to review others).
    async fn review(&self, user: &User, ask: &Ask) -> Result<bool, Unanswered> {
        let client = self.client_for(user).map_err(Unanswered::Unaskable)?;
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(ask.verb.to_owned()),
                    group: Some(ask.group.to_owned()),
                    resource: Some(ask.resource.to_owned()),
                    subresource: (!ask.subresource.is_empty()).then(|| ask.subresource.to_owned()),
                    namespace: (!ask.namespace.is_empty()).then(|| ask.namespace.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(client);
        let answer =
            tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| {
                Unanswered::Unreachable(format!("no answer within {} s", self.timeout.as_secs()))
            })?;
        match answer {
            Ok(answer) => Ok(answer.status.is_some_and(|s| s.allowed)),
            // The apiserver answered, with an error of its own.
            Err(e @ kube::Error::Api(_)) => Err(Unanswered::Refused(e.to_string())),
            Err(e) => Err(Unanswered::Unreachable(e.to_string())),
        }
    }
}

/// What one user may read and do, for the namespaces of the clusters raydar watches: what pages
/// render from (they cannot wait on Kubernetes while rendering, so it is worked out before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Namespaces whose RayClusters (and their pods, events, logs) the user may see.
    pub read: BTreeSet<String>,
    /// Namespaces where the user may delete RayClusters (tear down).
    pub delete: BTreeSet<String>,
    /// Namespaces where the user may update RayClusters (suspend, resume, scale).
    pub change: BTreeSet<String>,
}

impl Grants {
    /// Keeps the rows the user may see, each saying whether they may tear it down.
    pub fn apply(&self, rows: &mut Vec<platform::ClusterSummary>) {
        rows.retain(|c| self.read.contains(&c.namespace));
        for row in rows {
            row.may_delete = self.delete.contains(&row.namespace);
        }
    }
}

impl Access {
    /// Most questions in flight at once for one request.
    const PARALLEL: usize = 16;

    /// The namespaces among `namespaces` where `user` may list RayClusters: all of them when
    /// they may list everywhere, else each asked (cached).
    pub async fn readable(
        &self,
        user: &User,
        namespaces: impl IntoIterator<Item = String>,
    ) -> BTreeSet<String> {
        self.listable(user, namespaces, Ask::rayclusters).await
    }

    /// The namespaces among `namespaces` where `user` may list what `ask` asks about
    /// (`Ask::rayclusters`, `Ask::rayjobs`): all of them when they may list it everywhere, else
    /// each asked (cached).
    pub async fn listable(
        &self,
        user: &User,
        namespaces: impl IntoIterator<Item = String>,
        ask: fn(&'static str, &str) -> Ask,
    ) -> BTreeSet<String> {
        let namespaces: BTreeSet<String> = namespaces.into_iter().collect();
        if self.may(user, &ask("list", "")).await {
            return namespaces;
        }
        self.each(user, namespaces, |ns| ask("list", ns)).await
    }

    /// Among `namespaces`, those where `ask(namespace)` is allowed.
    async fn each(
        &self,
        user: &User,
        namespaces: BTreeSet<String>,
        ask: impl Fn(&str) -> Ask,
    ) -> BTreeSet<String> {
        use futures::StreamExt;
        futures::stream::iter(namespaces)
            .map(|ns| {
                let question = ask(&ns);
                async move { self.may(user, &question).await.then_some(ns) }
            })
            .buffer_unordered(Self::PARALLEL)
            .filter_map(|ns| async move { ns })
            .collect()
            .await
    }

    /// Everything [`Grants`] holds, for `namespaces`.
    pub async fn grants(
        &self,
        user: &User,
        namespaces: impl IntoIterator<Item = String>,
    ) -> Grants {
        let read = self.readable(user, namespaces).await;
        let delete = self.each(user, read.clone(), |ns| Ask::rayclusters("delete", ns)).await;
        let change = self.each(user, read.clone(), |ns| Ask::rayclusters("update", ns)).await;
        Grants { read, delete, change }
    }
}

/// A refusal to read: who may not read what, as Kubernetes decided.
pub fn may_not_read(user: &User, what: &str, namespace: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} may not read {what} in namespace {namespace} (Kubernetes RBAC)",
        user.name
    ))
}

/// The namespace of the route's `{namespace}`, and who is asking.
async fn asker<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<(String, User), ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    crate::extract::check_params(&params)?;
    let user = parts.extensions.get::<User>().cloned().ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "sign-in required: the request carries no identity")
    })?;
    Ok((params.get("namespace").cloned().unwrap_or_default(), user))
}

/// What a route reads, as Kubernetes' authorizer is asked about it.
pub trait Readable: Send + Sync + 'static {
    /// What a refusal says may not be read.
    const WHAT: &'static str;
    /// The question, for `namespace`.
    fn ask(namespace: &str) -> Ask;
}

/// Proof that the requester may read `R` in the route's `{namespace}`. Asked for first by
/// handlers, so a refusal comes before anything is read.
pub struct MayRead<R>(PhantomData<R>);

impl<S: Send + Sync, R: Readable> FromRequestParts<S> for MayRead<R>
where
    Access: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let (namespace, user) = asker(parts, state).await?;
        if Access::from_ref(state).may(&user, &R::ask(&namespace)).await {
            Ok(MayRead(PhantomData))
        } else {
            Err(may_not_read(&user, R::WHAT, &namespace))
        }
    }
}

/// A cluster's routes (its summary, pods, events, Ray's view, job logs, GPUs): readable by who
/// may list RayClusters in its namespace.
pub enum ClusterReads {}

impl Readable for ClusterReads {
    const WHAT: &'static str = "RayClusters";
    fn ask(namespace: &str) -> Ask {
        Ask::rayclusters("list", namespace)
    }
}

/// A Ray pod's log: readable by who may read pods' logs in its namespace.
pub enum PodLogs {}

impl Readable for PodLogs {
    const WHAT: &'static str = "pod logs";
    fn ask(namespace: &str) -> Ask {
        Ask::pod_logs(namespace)
    }
}

/// May read what a cluster's routes show.
pub type MayReadCluster = MayRead<ClusterReads>;
/// May read a Ray pod's log.
pub type MayReadPodLogs = MayRead<PodLogs>;

/// Route layer of pages: the requester's [`Grants`], worked out before a page renders
/// (rendering cannot wait on Kubernetes); pages read them from the request.
pub async fn with_grants(
    State((access, clusters)): State<(Access, Clusters)>,
    Extension(user): Extension<User>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    let grants = access.grants(&user, clusters.namespaces()).await;
    request.extensions_mut().insert(grants);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_that_cannot_be_renewed_stands_for_a_bounded_time() {
        let unreachable =
            Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap();
        let access = Access::new(unreachable);
        let alice = User::named("alice");
        let ask = |ns: &str| Ask::rayclusters("list", ns);
        let ago = |s: u64| Instant::now().checked_sub(Duration::from_secs(s)).unwrap();
        {
            let mut answers = access.answers.lock().unwrap();
            answers.insert((alice.clone(), ask("recent")), (true, ago(60)));
            answers.insert((alice.clone(), ask("old")), (true, ago(600)));
            answers.insert((alice.clone(), ask("refused")), (false, ago(60)));
        }
        assert!(access.may(&alice, &ask("recent")).await, "kept while the apiserver is away");
        assert!(!access.may(&alice, &ask("old")).await, "not past the bound");
        assert!(!access.may(&alice, &ask("refused")).await);
        assert!(!access.may(&alice, &ask("never-asked")).await, "fails closed");
    }

    #[tokio::test]
    async fn once_kubernetes_does_not_answer_nobody_waits_on_it_until_it_answers_again() {
        // An apiserver that takes connections and, for now, answers nothing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let mut access = Access::new(client);
        access.timeout = Duration::from_millis(200);
        let alice = User::named("alice");
        let ask = |ns: &str| Ask::rayclusters("list", ns);
        let ago = |s: u64| Instant::now().checked_sub(Duration::from_secs(s)).unwrap();
        access.answers.lock().unwrap().insert((alice.clone(), ask("seen")), (true, ago(60)));
        assert!(!access.may(&alice, &ask("new")).await, "timed out: fails closed");
        assert!(access.reach.unanswered.load(Ordering::Relaxed), "found unreachable");
        // It comes back: every review is allowed.
        let answers = axum::Router::new().fallback(|| async {
            let review = serde_json::json!({"apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview", "spec": {}, "status": {"allowed": true}});
            (axum::http::StatusCode::CREATED, axum::Json(review))
        });
        let serving = tokio::spawn(async move { axum::serve(listener, answers).await });
        // Answered from memory at once, while one question goes out in the background.
        assert!(access.may(&alice, &ask("seen")).await, "the last answer stands");
        assert!(!access.may(&alice, &ask("new")).await, "never answered: no, for now");
        until(|| !access.reach.unanswered.load(Ordering::Relaxed)).await;
        // Asked again as before: the background question's answer is kept, others are asked.
        let kept = access.answers.lock().unwrap().get(&(alice.clone(), ask("seen"))).copied();
        assert!(kept.is_some_and(|(allowed, at)| allowed && at.elapsed() < Access::TTL));
        assert!(access.may(&alice, &ask("other")).await);
        serving.abort();
    }

    /// Waits (at most 10 s) until `done`.
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 10 s");
    }

    #[tokio::test]
    async fn remembered_access_answers_from_the_last_answers_and_asks_nothing() {
        // An apiserver that takes connections and never answers: asking would wait 10 s.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let url = format!("https://{}", silent.local_addr().unwrap());
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let access = Access::new(client).remembered();
        let alice = User::named("alice");
        let ask = |ns: &str| Ask::rayclusters("list", ns);
        let ago = |s: u64| Instant::now().checked_sub(Duration::from_secs(s)).unwrap();
        {
            let mut answers = access.answers.lock().unwrap();
            answers.insert((alice.clone(), ask("fresh")), (true, Instant::now()));
            answers.insert((alice.clone(), ask("stale")), (true, ago(60)));
            answers.insert((alice.clone(), ask("old")), (true, ago(600)));
        }
        let grants =
            access.grants(&alice, ["fresh", "stale", "old", "never-asked"].map(String::from)).await;
        assert_eq!(grants.read, BTreeSet::from(["fresh".to_owned(), "stale".to_owned()]));
        assert!(grants.delete.is_empty(), "never answered: no");
        let asked = silent.accept();
        assert!(
            asked.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "nothing was asked of the apiserver: {asked:?}"
        );
    }
}
