//! The browser's calls to raydar's REST API: JSON in, status and JSON out, each given up after
//! [`TIMEOUT_MS`] so a hung server leaves a message, not a spinner.

use platform::FieldError;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Headers, RequestInit, Response};

/// Longest a call may take: the server's own Kubernetes calls end within 30 s.
pub const TIMEOUT_MS: u32 = 35_000;

/// The server's answer.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`Null` when there was none).
    pub body: Value,
}

impl Answer {
    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The per-field errors of a 422.
    pub fn field_errors(&self) -> Vec<FieldError> {
        serde_json::from_value(self.body["errors"].clone()).unwrap_or_default()
    }

    /// One line for the user: the server's message (Kubernetes' own for refusals).
    pub fn message(&self) -> String {
        match self.body["error"].as_str() {
            Some(error) => error.to_owned(),
            None => {
                let fields: Vec<String> =
                    self.field_errors().iter().map(ToString::to_string).collect();
                if fields.is_empty() {
                    format!("raydar answered HTTP {}", self.status)
                } else {
                    fields.join("; ")
                }
            }
        }
    }
}

/// Sends `body` (JSON) with `method` to `url` on this origin.
/// On a page of one Kubernetes cluster, on that one ([`crate::api::rest::here`]).
pub async fn send(method: &str, url: &str, body: Option<String>) -> Result<Answer, String> {
    let url = &crate::api::rest::here(url.to_owned());
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(describe)?;
    let _ = headers.set("accept", "application/json");
    // Writes carry the page's CSRF token; the server refuses them without.
    if method != "GET" {
        if let Some(session) = crate::api::Session::current() {
            let _ = headers.set("x-csrf-token", &session.csrf);
        }
    }
    if let Some(body) = body {
        let _ = headers.set("content-type", "application/json");
        init.set_body(&JsValue::from_str(&body));
    }
    init.set_headers(&headers);
    init.set_signal(Some(&AbortSignal::timeout_with_u32(TIMEOUT_MS)));
    let window = web_sys::window().ok_or("no browser window")?;
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("raydar did not answer: {}", describe(e)))?
        .unchecked_into();
    let text = match response.text() {
        Ok(text) => JsFuture::from(text).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    Ok(Answer {
        status: response.status(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// Resolves after `ms` milliseconds. The browser's own `resolve` goes to setTimeout, so no Rust
/// closure lives on in JS. Not inlined, and not async: wasm-split puts whatever calls a
/// closure-to-JS conversion directly, and all its callees, in the first-load module; kept apart,
/// only this function goes there, not the caller's page (measured: 14 KB br).
#[inline(never)]
pub fn sleep(ms: i32) -> JsFuture {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    JsFuture::from(promise)
}

/// Runs `read` now and again `every_ms` after each answer, handing each result to `apply`, until
/// the calling component is dropped. A loop with [`sleep`], not a JS interval: handing a Rust
/// closure to setInterval made wasm-split put it and all it calls (the fetch, the JSON decoding)
/// in the first-load module (measured: +14 KB br). One read at a time, so a slow answer is not
/// asked for twice.
pub fn repeat<T: 'static, F: std::future::Future<Output = T> + 'static>(
    every_ms: i32,
    read: impl Fn() -> F + 'static,
    apply: impl Fn(T) + 'static,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let open = Arc::new(AtomicBool::new(true));
    let running = open.clone();
    leptos::prelude::on_cleanup(move || open.store(false, Ordering::Relaxed));
    leptos::task::spawn_local(async move {
        while running.load(Ordering::Relaxed) {
            let answer = read().await;
            if !running.load(Ordering::Relaxed) {
                break;
            }
            apply(answer);
            let _ = sleep(every_ms).await;
        }
    });
}

fn describe(error: JsValue) -> String {
    // A timeout surfaces as a DOMException named TimeoutError.
    let name = js_sys::Reflect::get(&error, &"name".into()).ok().and_then(|n| n.as_string());
    if name.as_deref() == Some("TimeoutError") {
        return format!("no answer within {} s", TIMEOUT_MS / 1000);
    }
    js_sys::Reflect::get(&error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}
