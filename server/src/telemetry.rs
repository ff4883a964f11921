//! OpenTelemetry traces, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: raydar's tracing spans exported over OTLP/HTTP
//! (protobuf), one trace per request whose parent is the caller's `traceparent` (a pipeline's
//! run, say), with the handlers' own spans (a launch's render, dry-run and apply) as children.
//!
//! The exporter sends with raydar's own reqwest, on raydar's runtime: the SDK's batch processor
//! runs on a thread of its own and only waits for the answer. Its queue is the SDK's, bounded
//! (2,048 spans; past that spans are dropped, never held).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::middleware::Next;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether traces are exported: the endpoint OpenTelemetry's own variables name, if any.
pub fn endpoint() -> Option<String> {
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
}

/// The tracer provider exporting to [`endpoint`], named by `OTEL_SERVICE_NAME` (default
/// `raydar`); its tracer goes to `tracing_opentelemetry::layer().with_tracer(...)`. Call within
/// the runtime the exports are to be sent on; shut it down ([`shutdown`]) to send the last spans.
pub fn provider() -> Result<SdkTracerProvider, String> {
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot make the OTLP client: {e}"))?,
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|_| "OTLP export needs the tokio runtime".to_owned())?,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()
        .map_err(|e| format!("cannot export traces over OTLP: {e}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "raydar".into());
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_batch_exporter(exporter)
        .build())
}

/// The tracer spans go to.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("raydar-server")
}

/// Sends what is left and stops exporting (off the runtime's threads: it blocks).
pub async fn shutdown(provider: SdkTracerProvider) {
    let done = tokio::task::spawn_blocking(move || provider.shutdown());
    if let Ok(Err(e)) = done.await {
        tracing::warn!("the last traces were not sent: {e}");
    }
}

/// Middleware: each request in a span of its own, `METHOD /route/{template}`, child of the
/// caller's `traceparent` when it sends one (W3C Trace Context), with the answer's status.
pub async fn traced_requests(
    matched: Option<MatchedPath>,
    request: axum::extract::Request,
    next: Next,
) -> axum::response::Response {
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    // A caller's malformed traceparent is ignored: the request is its own trace's root.
    let _ = span.set_parent(parent);
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// An OTLP client that sends with reqwest on raydar's runtime, from whatever thread asks.
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raydar's OTLP client")
    }
}

impl HttpClient for Client {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let (head, body) = request.into_parts();
            let url = head.uri.to_string();
            let answer = http.request(head.method, url).headers(head.headers).body(body).send();
            let answer = answer.await?;
            let mut response = Response::builder().status(answer.status());
            if let Some(headers) = response.headers_mut() {
                *headers = answer.headers().clone();
            }
            let body = answer.bytes().await?;
            Ok::<_, HttpError>(response.body(body)?)
        });
        Box::pin(async move { sent.await.map_err(|e| -> HttpError { Box::new(e) })? })
    }
}
