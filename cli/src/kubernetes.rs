//! The Kubernetes API of the kubeconfig context: the client, the context's namespace, and
//! calls that each end within the request timeout.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{Error, Result};

/// A client for the context's apiserver.
#[derive(Clone)]
pub struct Kubernetes {
    /// The kube client; every call through it is wrapped in [`Kubernetes::call`].
    pub client: Client,
    /// Longest a single call may take.
    pub request_timeout: Duration,
    /// Where the context points, for messages.
    pub apiserver: String,
}

impl Kubernetes {
    /// Connects (lazily: no request is made) to the current context, or `context`.
    pub async fn connect(context: Option<&str>, request_timeout: Duration) -> Result<Self> {
        let mut config = load_config(context).await?;
        // The whole-call timeout of `call` bounds unary requests; this bounds each read, and
        // so watch streams, whose server-side timeout (see `wait`) is shorter.
        config.read_timeout = Some(request_timeout);
        config.reset_reader_on_write = true;
        config.connect_timeout = Some(request_timeout.min(Duration::from_secs(10)));
        config.write_timeout = Some(request_timeout);
        let apiserver = config.cluster_url.to_string();
        let client =
            Client::try_from(config).map_err(|e| Error::Config(crate::error::causes(&e)))?;
        Ok(Kubernetes { client, request_timeout, apiserver })
    }

    /// The namespace to use: `namespace` if given, else the context's.
    pub fn namespace(&self, namespace: Option<&str>) -> String {
        namespace.map_or_else(|| self.client.default_namespace().to_owned(), str::to_owned)
    }

    /// Runs one API call, failing with a message naming `action` if it errs or takes longer
    /// than the request timeout.
    pub async fn call<T>(
        &self,
        action: &str,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Error::kube(action, error).at(&self.apiserver)),
            Err(_) => Err(Error::RequestTimeout {
                action: action.to_owned(),
                after: self.request_timeout,
            }),
        }
    }

    /// Who the apiserver says the credentials of the context belong to (a SelfSubjectReview),
    /// the only source of the owner of what `up` creates.
    pub async fn user(&self) -> Result<String> {
        let api: Api<SelfSubjectReview> = Api::all(self.client.clone());
        let review = self
            .call(
                "asking the apiserver who you are (SelfSubjectReview)",
                api.create(&PostParams::default(), &SelfSubjectReview::default()),
            )
            .await?;
        let user =
            review.status.and_then(|s| s.user_info).and_then(|u| u.username).unwrap_or_default();
        if user.is_empty() || user == "system:anonymous" {
            return Err(Error::Precondition(
                "the apiserver does not know who you are (anonymous); use a kubeconfig context with credentials"
                    .to_owned(),
            ));
        }
        Ok(user)
    }
}

/// The namespace of the context, without connecting, or `default`; for `render`, which must work
/// without a cluster.
pub fn context_namespace(context: Option<&str>) -> String {
    let from_kubeconfig = || -> Option<String> {
        let kubeconfig = Kubeconfig::read().ok()?;
        let name = context.map(str::to_owned).or_else(|| kubeconfig.current_context.clone())?;
        let named = kubeconfig.contexts.iter().find(|c| c.name == name)?;
        named.context.as_ref()?.namespace.clone()
    };
    from_kubeconfig().filter(|ns| !ns.is_empty()).unwrap_or_else(|| "default".to_owned())
}

/// The names of the kubeconfig's contexts, in its order.
pub fn context_names() -> Result<Vec<String>> {
    let kubeconfig = Kubeconfig::read().map_err(|e| Error::Config(crate::error::causes(&e)))?;
    Ok(kubeconfig.contexts.into_iter().map(|c| c.name).collect())
}

async fn load_config(context: Option<&str>) -> Result<Config> {
    match context {
        Some(context) => {
            let options =
                KubeConfigOptions { context: Some(context.to_owned()), ..Default::default() };
            Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Config(crate::error::causes(&e)))
        }
        None => Config::infer().await.map_err(|e| Error::Config(crate::error::causes(&e))),
    }
}

impl Error {
    /// Says which apiserver could not be reached.
    fn at(self, apiserver: &str) -> Self {
        match self {
            Error::Unreachable { action, message } => Error::Unreachable {
                action,
                message: format!("cannot reach the Kubernetes API at {apiserver}: {message}"),
            },
            other => other,
        }
    }
}
