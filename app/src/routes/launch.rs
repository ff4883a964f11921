//! The launch page: choose a template, fill the form generated from its parameters, see the exact
//! manifest, launch. Or run a job instead: the same form and an entrypoint make a RayJob whose
//! cluster, made from the template, is shut down when the job ends.
//!
//! What is typed is checked as it is typed, by the platform's own rules (the same code and
//! messages the server renders with), and again by the server: a short pause in typing sends the
//! form for a server-side dry-run, whose answer is either the manifest Kubernetes accepted or the
//! server's message per field. Launch sends the same request for real; a second click while it is
//! on its way does nothing, so a double click creates one cluster. The page then moves to the new
//! cluster's page, where its progress to Ready shows as it happens.
//!
//! The page is a lazy route: its code loads when it is opened, not with the cluster list.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};
use platform::template::value::{cluster_name_problem, namespace_problem};
use platform::template::ParameterKind;
use platform::{TemplateForm, TemplateParameter};
use serde_json::{json, Map, Value};

use crate::api::{launch_templates, LaunchForms};
use crate::components::failure::{self, AppError};

/// How long typing must pause before the form is sent for a dry-run.
#[cfg(feature = "hydrate")]
const PREVIEW_PAUSE: std::time::Duration = std::time::Duration::from_millis(350);

/// `/launch[?template=NAME]`.
pub struct LaunchPage;

#[lazy_route]
impl LazyRoute for LaunchPage {
    // The templates are loaded by the view, not here: what `data` reads is fetched and decoded
    // by code in the first-load bundle, and the launch form's types belong in its own chunk.
    fn data() -> Self {
        LaunchPage
    }

    fn view(this: Self) -> AnyView {
        let _ = this;
        let forms = Resource::new(|| (), |_| launch_templates());
        view! {
            <section class="launch">
                <p class="crumbs"><a href="/">"Ray clusters"</a> " / launch"</p>
                <h1>"Launch a Ray cluster"</h1>
                <Suspense fallback=|| view! { <p class="empty">"Loading templates…"</p> }>
                    <ErrorBoundary fallback=failure::notice>
                        {move || Suspend::new(async move {
                            forms.await.map_err(AppError::load("templates")).map(|forms| view! { <Launch forms/> })
                        })}
                    </ErrorBoundary>
                </Suspense>
            </section>
        }
        .into_any()
    }
}

/// The template choice and the form of the chosen one (`?template=`, else the first).
#[component]
fn Launch(forms: LaunchForms) -> impl IntoView {
    let LaunchForms { templates, owner, team, namespace, context, contexts } = forms;
    // Of several Kubernetes clusters: which one the launch goes to, and the others (each with
    // its own templates, quotas and RBAC: a new page).
    let on = (!contexts.is_empty()).then(|| {
        let others = contexts.into_iter().map(|c| {
            let chosen = (c == context).then_some("true");
            view! { " " <a rel="external" href=format!("/launch?context={c}") aria-current=chosen>{c.clone()}</a> }
        });
        view! { <p class="contexts">"On Kubernetes cluster " <strong>{context.clone()}</strong> " · launch on:" {others.collect_view()}</p> }
    });
    if templates.is_empty() {
        return view! {
            <p class="empty">
                "No RayClusterTemplates are installed. A platform admin adds them with "
                <code>"kubectl apply -f deploy/templates/"</code> "."
            </p>
        }
        .into_any();
    }
    let query = use_query_map();
    let templates = StoredValue::new(templates);
    let chosen = Memo::new(move |_| {
        let wanted = query.read().get("template");
        templates.with_value(|all| {
            wanted.and_then(|w| all.iter().find(|t| t.name == w)).or_else(|| all.first()).cloned()
        })
    });
    let choices = templates.with_value(|all| {
        all.iter()
            .map(|t| {
                let name = t.name.clone();
                let is_chosen = move || chosen.with(|c| c.as_ref().is_some_and(|c| c.name == name));
                view! {
                    <li>
                        <a
                            href=crate::api::rest::here(format!("/launch?template={}", t.name))
                            class="template"
                            class:chosen=is_chosen.clone()
                            aria-current=move || is_chosen().then_some("true")
                        >
                            <strong>{t.name.clone()}</strong>
                            <span class="help">{t.description.clone()}</span>
                            <span class="limits">{limits(t)}</span>
                        </a>
                    </li>
                }
            })
            .collect_view()
    });
    view! {
        <p class="who">"Launching as " <strong>{owner}</strong> " of team " <strong>{team}</strong> "."</p>
        {on}
        <h2>"Template"</h2>
        <ul class="templates" aria-label="Templates">{choices}</ul>
        {move || chosen.get().map(|form| view! { <LaunchForm form namespace=namespace.clone()/> })}
    }
    .into_any()
}

/// The template's limits in one line: "at most 16 GPUs · lives 8h · suspended when idle 2h (no
/// Ray job, GPUs below 10 %) · images rayproject/ray:*".
fn limits(form: &TemplateForm) -> String {
    let policy = &form.policy;
    let mut parts = Vec::new();
    if let Some(gpus) = policy.max_gpus {
        parts.push(if gpus == 0 { "no GPUs".to_owned() } else { format!("at most {gpus} GPUs") });
    }
    if let Some(lifetime) = &policy.max_lifetime {
        parts.push(format!("lives at most {lifetime}"));
    }
    if let Some(idle) = &policy.idle {
        let action = match idle.action {
            Some(platform::template::ExpiryAction::Teardown) => "torn down",
            _ => "suspended",
        };
        parts.push(format!(
            "{action} when idle {} (no Ray job, GPUs below {:.0} %)",
            idle.after, idle.gpu_below
        ));
    }
    if !policy.allowed_images.is_empty() {
        parts.push(format!("images {}", policy.allowed_images.join(", ")));
    }
    parts.join(" · ")
}

/// What the preview pane shows. (The server renders only the first state; the rest happen in the
/// browser.)
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq)]
enum Preview {
    /// Nothing sent yet: says what is missing.
    Waiting(String),
    /// A dry-run is on its way.
    Checking,
    /// The manifest Kubernetes accepted in a dry-run, and whether its pods fit (the answer's
    /// `capacity`, as JSON).
    Manifest(String, serde_json::Value),
    /// The server or Kubernetes refused the form as a whole (per-field errors go to the fields).
    Refused(String),
}

/// The fields every form has before the template's parameters.
const NAME: &str = "name";
const NAMESPACE: &str = "namespace";
/// A job's command, in the form when it runs a job.
const ENTRYPOINT: &str = "entrypoint";
/// Where a job on a cluster of its own is sent.
const RAYJOBS: &str = "/api/v1/rayjobs";

/// The form of one template.
#[component]
fn LaunchForm(form: TemplateForm, namespace: String) -> impl IntoView {
    let template = form.name.clone();
    let parameters = StoredValue::new(form.parameters);
    let initial: BTreeMap<String, String> = parameters.with_value(|ps| {
        ps.iter()
            .map(|p| {
                (p.name.clone(), p.default.as_ref().map(ToString::to_string).unwrap_or_default())
            })
            .chain([(NAME.to_owned(), String::new()), (NAMESPACE.to_owned(), namespace)])
            .chain([(ENTRYPOINT.to_owned(), String::new())])
            .collect()
    });
    let values = RwSignal::new(initial);
    // Launch a cluster, or run a job on a cluster of its own.
    let as_job = RwSignal::new(false);
    // A field's error shows once it has been typed in, or after a launch was attempted.
    let touched = RwSignal::new(BTreeSet::<String>::new());
    let server_errors = RwSignal::new(BTreeMap::<String, String>::new());
    let preview = RwSignal::new(Preview::Waiting("Name the cluster to see its manifest.".into()));
    let launching = RwSignal::new(false);
    let launch_error = RwSignal::new(None::<String>);
    // Counts edits, so a dry-run answer for an older state of the form is dropped.
    let edits = RwSignal::new(0u64);
    // Whether the browser has taken the form over (until then typing does nothing).
    let live = RwSignal::new(false);

    // Every field's problem as the browser sees it, by field name.
    let problems = Memo::new(move |_| {
        values.with(|values| {
            let mut problems = BTreeMap::new();
            // Checked as sent: trimmed.
            let text = |field: &str| values.get(field).map(|v| v.trim()).unwrap_or_default();
            if let Some(p) = cluster_name_problem(text(NAME)) {
                problems.insert(NAME.to_owned(), p);
            }
            if let Some(p) = namespace_problem(text(NAMESPACE)) {
                problems.insert(NAMESPACE.to_owned(), p);
            }
            if as_job.get() && text(ENTRYPOINT).is_empty() {
                problems
                    .insert(ENTRYPOINT.to_owned(), "is required: the command the job runs".into());
            }
            parameters.with_value(|ps| {
                for p in ps {
                    if let Some(problem) = parameter_problem(p, text(&p.name)) {
                        problems.insert(p.name.clone(), problem);
                    }
                }
            });
            problems
        })
    });

    let request = {
        let template = template.clone();
        move || {
            let request = values.with(|v| launch_request(&template, v, &parameters.read_value()));
            match as_job.get_untracked() {
                true => values.with(|v| job_request(request, v)),
                false => request,
            }
        }
    };
    // Where the form is sent: the cluster launch, or the job run.
    let endpoint =
        move || if as_job.get_untracked() { RAYJOBS } else { crate::api::rest::CLUSTERS };
    let choose = move |job: bool| {
        as_job.set(job);
        edits.update(|n| *n += 1);
    };

    let edit = move |field: String, text: String| {
        values.update(|v| {
            v.insert(field.clone(), text);
        });
        touched.update(|t| {
            t.insert(field.clone());
        });
        server_errors.update(|e| {
            e.remove(&field);
        });
        edits.update(|n| *n += 1);
    };

    // A pause in typing sends the form for a dry-run, if the browser finds nothing wrong with it.
    #[cfg(feature = "hydrate")]
    {
        let request = request.clone();
        Effect::new(move |_| {
            let edit = edits.get();
            live.set(true);
            if values.with(|v| v.get(NAME).is_none_or(|name| name.trim().is_empty())) {
                preview.set(Preview::Waiting("Name the cluster to see its manifest.".into()));
                return;
            }
            let problems = problems.get();
            if let Some((field, problem)) = problems.iter().next() {
                preview.set(Preview::Waiting(format!(
                    "Fix {field} to see the manifest: it {problem}."
                )));
                return;
            }
            let body = request();
            set_timeout(
                move || {
                    if edits.get_untracked() != edit {
                        return;
                    }
                    preview.set(Preview::Checking);
                    leptos::task::spawn_local(async move {
                        let answer = crate::http::send(
                            "POST",
                            &format!("{}?dryRun=true", endpoint()),
                            Some(body),
                        )
                        .await;
                        if edits.get_untracked() != edit {
                            return;
                        }
                        match answer {
                            Ok(answer) if answer.ok() => {
                                server_errors.set(BTreeMap::new());
                                preview.set(Preview::Manifest(
                                    answer.body["yaml"].as_str().unwrap_or_default().to_owned(),
                                    answer.body["capacity"].clone(),
                                ));
                            }
                            Ok(answer) => refused(answer, server_errors, preview),
                            Err(why) => preview.set(Preview::Refused(why)),
                        }
                    });
                },
                PREVIEW_PAUSE,
            );
        });
    }

    let navigate = leptos_router::hooks::use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // The guard a double click meets: the second click finds the launch on its way.
        if launching.get_untracked() {
            return;
        }
        launch_error.set(None);
        touched.set(values.with_untracked(|v| v.keys().cloned().collect()));
        if !problems.get_untracked().is_empty() {
            launch_error.set(Some("Fix the fields marked above, then launch.".into()));
            return;
        }
        launching.set(true);
        let body = request();
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            #[cfg(feature = "hydrate")]
            {
                match crate::http::send("POST", endpoint(), Some(body)).await {
                    Ok(answer) if answer.status == 201 => {
                        let (ns, name) =
                            (answer.body["namespace"].as_str(), answer.body["name"].as_str());
                        let ns = ns.unwrap_or_default();
                        // A job is followed on the RayJob list, whose row leads to its log.
                        let page = match as_job.get_untracked() {
                            true => format!("/jobs?namespace={ns}"),
                            false => crate::api::rest::page(ns, name.unwrap_or_default()),
                        };
                        let page = crate::api::rest::here(page);
                        navigate(&page, Default::default());
                        return;
                    }
                    Ok(answer) => {
                        launch_error.set(Some(answer.message()));
                        if answer.status == 422 {
                            refused(answer, server_errors, preview);
                        }
                    }
                    Err(why) => launch_error.set(Some(why)),
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (body, &navigate, endpoint);
            launching.set(false);
        });
    };

    let field_views = {
        let fixed = [
            field_view(
                NAME,
                "Cluster name",
                "Lowercase letters, digits and '-', at most 53.".into(),
                None,
            ),
            field_view(NAMESPACE, "Namespace", "Where the cluster and its pods live.".into(), None),
        ];
        let params = parameters.with_value(|ps| {
            ps.iter()
                .map(|p| {
                    let help = match (&p.description, &p.default) {
                        (d, Some(default)) => {
                            format!("{d} {} Default {default}.", sentence(&p.allowed()))
                        }
                        (d, None) => format!("{d} {}", sentence(&p.allowed())),
                    };
                    field_view(&p.name, &p.name, help, Some(p))
                })
                .collect::<Vec<_>>()
        });
        fixed
            .into_iter()
            .chain(params)
            .map(|f| f(values, problems, server_errors, touched, Box::new(edit)))
            .collect_view()
    };
    let entrypoint_view = field_view(
        ENTRYPOINT,
        "Entrypoint",
        "The command the job runs on its cluster, e.g. python train.py --epochs 3.".into(),
        None,
    )(values, problems, server_errors, touched, Box::new(edit));

    view! {
        <form class="launch-form" on:submit=submit novalidate data-template=template data-live=move || live.get().to_string()>
            <fieldset class="launch-kind">
                <legend>"What to do"</legend>
                <label><input type="radio" name="kind" value="cluster" prop:checked=move || !as_job.get() on:change=move |_| choose(false)/> "Launch a cluster"</label>
                <label><input type="radio" name="kind" value="job" prop:checked=move || as_job.get() on:change=move |_| choose(true)/> "Run a job on a cluster of its own, shut down when it ends"</label>
            </fieldset>
            <div class="fields">{field_views}</div>
            <div class="job-fields" hidden=move || !as_job.get()>{entrypoint_view}</div>
            <div class="launch-actions">
                <button type="submit" class="primary" disabled=move || launching.get()>
                    {move || match (launching.get(), as_job.get()) {
                        (true, _) => "Sending…",
                        (false, false) => "Launch",
                        (false, true) => "Run job",
                    }}
                </button>
                {move || launch_error.get().map(|why| view! { <p class="error" role="alert">{why}</p> })}
            </div>
        </form>
        <section class="preview" aria-live="polite" aria-label="Manifest preview">
            <h2>"Manifest"</h2>
            {move || match preview.get() {
                Preview::Waiting(why) => view! { <p class="empty">{why}</p> }.into_any(),
                Preview::Checking => view! { <p class="empty">"Checking with Kubernetes (dry-run)…"</p> }.into_any(),
                Preview::Manifest(yaml, capacity) => view! {
                    {capacity_view(&capacity)}
                    <pre class="manifest"><code>{yaml}</code></pre>
                }.into_any(),
                Preview::Refused(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
            }}
        </section>
    }
}

/// Whether the launch's pods fit, from the dry-run's `capacity`: the verdict in a line, then
/// each group's and each quota limit's. It informs; the Launch button stays.
fn capacity_view(capacity: &serde_json::Value) -> impl IntoView {
    let text =
        |v: &serde_json::Value, field: &str| v[field].as_str().unwrap_or_default().to_owned();
    let verdict = text(capacity, "verdict");
    let groups = capacity["groups"].as_array().cloned().unwrap_or_default();
    let quotas = capacity["quotas"].as_array().cloned().unwrap_or_default();
    let unknown = capacity["unknown"].as_array().cloned().unwrap_or_default();
    let group_rows = groups
        .iter()
        .map(|g| {
            let group = text(g, "group");
            let waits = g["fitNow"].as_u64() < g["pods"].as_u64();
            let label =
                if group == "head" { "Head".to_owned() } else { format!("Workers {group}") };
            view! {
                <li class:waits=waits data-group=group>
                    <strong>{label}</strong>{format!(" ({}): {}", g["pods"], text(g, "verdict"))}
                </li>
            }
        })
        .collect_view();
    let quota_rows = quotas
        .iter()
        .map(|q| {
            let over = q["exceeds"].as_bool().unwrap_or(false);
            view! { <li class:over=over class="quota">{text(q, "verdict")}</li> }
        })
        .collect_view();
    let unknown_rows = unknown
        .iter()
        .map(|u| view! { <li class="unknown">{u.as_str().unwrap_or_default().to_owned()}</li> })
        .collect_view();
    view! {
        <div class="capacity" data-verdict=verdict aria-label="Capacity">
            <h3>"Capacity"</h3>
            <p class="summary">{text(capacity, "summary")}</p>
            <ul>{group_rows}{quota_rows}{unknown_rows}</ul>
            <p class="help">"Kubernetes decides: a launch that does not fit is still sent, and waits."</p>
        </div>
    }
}

/// A server refusal shown where it belongs: per-field errors at their fields, the rest in the
/// preview pane.
#[cfg(feature = "hydrate")]
fn refused(
    answer: crate::http::Answer,
    server_errors: RwSignal<BTreeMap<String, String>>,
    preview: RwSignal<Preview>,
) {
    let fields = answer.field_errors();
    if fields.is_empty() {
        preview.set(Preview::Refused(answer.message()));
    } else {
        preview.set(Preview::Waiting(
            "The server found problems with the fields marked above.".into(),
        ));
        server_errors.set(fields.into_iter().map(|e| (e.field, e.message)).collect());
    }
}

/// The signals a field reads and the edit it reports.
type FieldView = Box<
    dyn FnOnce(
        RwSignal<BTreeMap<String, String>>,
        Memo<BTreeMap<String, String>>,
        RwSignal<BTreeMap<String, String>>,
        RwSignal<BTreeSet<String>>,
        Box<dyn Fn(String, String) + Send + Sync>,
    ) -> AnyView,
>;

/// One labelled field with its help and its error: a select for an enum, text otherwise.
fn field_view(
    field: &str,
    label: &str,
    help: String,
    parameter: Option<&TemplateParameter>,
) -> FieldView {
    let field = field.to_owned();
    let label = label.to_owned();
    let options = parameter.filter(|p| p.kind == ParameterKind::Enum).map(|p| p.values.clone());
    let numeric = parameter.is_some_and(|p| p.kind == ParameterKind::Integer);
    Box::new(move |values, problems, server_errors, touched, edit| {
        let id = format!("field-{field}");
        let help_id = format!("{id}-help");
        let error_id = format!("{id}-error");
        let shown_error = {
            let field = field.clone();
            Memo::new(move |_| {
                let server = server_errors.with(|e| e.get(&field).cloned());
                let shown = touched.with(|t| t.contains(&field));
                server
                    .or_else(|| shown.then(|| problems.with(|p| p.get(&field).cloned())).flatten())
            })
        };
        let value = {
            let field = field.clone();
            move || values.with(|v| v.get(&field).cloned().unwrap_or_default())
        };
        let on_input = {
            let field = field.clone();
            move |ev| edit(field.clone(), event_target_value(&ev))
        };
        let described = format!("{help_id} {error_id}");
        let input = match options {
            Some(options) => view! {
                <select id=id.clone() name=field.clone() aria-describedby=described
                    aria-invalid=move || shown_error.with(Option::is_some).then_some("true")
                    prop:value=value on:change=on_input>
                    {options.into_iter().map(|o| view! { <option value=o.clone()>{o.clone()}</option> }).collect_view()}
                </select>
            }
            .into_any(),
            None => view! {
                <input id=id.clone() name=field.clone() type="text" autocomplete="off" spellcheck="false"
                    inputmode=numeric.then_some("numeric")
                    aria-describedby=described
                    aria-invalid=move || shown_error.with(Option::is_some).then_some("true")
                    prop:value=value on:input=on_input/>
            }
            .into_any(),
        };
        view! {
            <div class="field" data-field=field.clone() class:invalid=move || shown_error.with(Option::is_some)>
                <label for=id>{label}</label>
                {input}
                <p class="help" id=help_id>{help}</p>
                <p class="field-error" id=error_id role="status">{move || shown_error.get()}</p>
            </div>
        }
        .into_any()
    })
}

/// What the browser finds wrong with a parameter's text; empty means "use the default".
fn parameter_problem(parameter: &TemplateParameter, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return parameter.default.is_none().then(|| parameter.missing());
    }
    parameter.check_text(text, |text| pattern_matches(parameter, text)).err()
}

/// A string parameter's pattern, matched whole by the browser's own RegExp (`u` flag, as an HTML
/// form's `pattern` attribute does). The server matches again with its engine.
fn pattern_matches(parameter: &TemplateParameter, text: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let pattern = parameter.pattern.as_deref().unwrap_or_default();
        js_sys::RegExp::new(&format!("^(?:{pattern})$"), "u").test(text)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        // The server renders forms before anything is typed; nothing is checked there.
        let _ = (parameter, text);
        true
    }
}

/// The request `POST /api/v1/clusters` takes; empty parameters are left out so that their
/// defaults apply, integers go as numbers.
fn launch_request(
    template: &str,
    values: &BTreeMap<String, String>,
    parameters: &[TemplateParameter],
) -> String {
    let text = |field: &str| values.get(field).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut given = Map::new();
    for p in parameters {
        let value = text(&p.name);
        if value.is_empty() {
            continue;
        }
        let json = match (p.kind, value.parse::<i64>()) {
            (ParameterKind::Integer, Ok(n)) => json!(n),
            _ => Value::String(value),
        };
        given.insert(p.name.clone(), json);
    }
    json!({ "template": template, "name": text(NAME), "namespace": text(NAMESPACE), "parameters": given })
        .to_string()
}

/// A launch request (`request`, JSON) as a job run: with the entrypoint.
fn job_request(request: String, values: &BTreeMap<String, String>) -> String {
    let mut body: Value = serde_json::from_str(&request).unwrap_or_default();
    let entrypoint = values.get(ENTRYPOINT).map(|v| v.trim().to_owned()).unwrap_or_default();
    body[ENTRYPOINT] = Value::String(entrypoint);
    body.to_string()
}

/// "an integer from 0 to 4" as a sentence: "An integer from 0 to 4."
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use platform::template::Scalar;

    use super::*;

    fn parameter(name: &str, kind: ParameterKind, default: Option<Scalar>) -> TemplateParameter {
        TemplateParameter {
            name: name.into(),
            kind,
            description: String::new(),
            default,
            min: Some(Scalar::Integer(0)),
            max: Some(Scalar::Integer(4)),
            pattern: None,
            values: Vec::new(),
        }
    }

    #[test]
    fn a_request_leaves_empty_fields_to_their_defaults_and_sends_integers_as_numbers() {
        let parameters = [
            parameter("workers", ParameterKind::Integer, Some(Scalar::Integer(1))),
            parameter("cpus", ParameterKind::Integer, Some(Scalar::Integer(2))),
        ];
        let values: BTreeMap<String, String> =
            [("name", " demo "), ("namespace", "team-a"), ("workers", " 3 "), ("cpus", "  ")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let request: Value =
            serde_json::from_str(&launch_request("cpu-small", &values, &parameters)).unwrap();
        assert_eq!(
            request,
            json!({"template": "cpu-small", "name": "demo", "namespace": "team-a", "parameters": {"workers": 3}})
        );
    }

    #[test]
    fn an_empty_field_is_an_error_only_without_a_default() {
        let with_default = parameter("workers", ParameterKind::Integer, Some(Scalar::Integer(1)));
        assert_eq!(parameter_problem(&with_default, ""), None);
        let required = parameter("workers", ParameterKind::Integer, None);
        assert_eq!(
            parameter_problem(&required, " ").as_deref(),
            Some("is required: an integer from 0 to 4")
        );
        assert!(parameter_problem(&required, "5").unwrap().contains("from 0 to 4"));
    }
}
