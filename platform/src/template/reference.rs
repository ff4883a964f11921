//! Parameter references in a template's spec document, and typed substitution into it.
//!
//! A reference is a string value that is exactly `{{ name }}` or `{{ name | string }}` (spaces
//! inside the braces optional). It is replaced as a whole by the parameter's typed value, so no
//! value can reach any other place of the document, however it is written. Anything else that
//! contains `{{` is an error: a reference inside a longer string would be text splicing.

use std::fmt::Write;

use serde_json::Value;

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Where a value sits in a document.
pub(super) type Path = Vec<Segment>;

/// A whole-value use of a parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Reference {
    /// The parameter's name.
    pub name: String,
    /// `| string`: substitute the value's text, for fields that only take strings
    /// (`rayStartParams`, env values).
    pub as_string: bool,
}

/// What [`scan`] finds in a document.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Every reference, in document order.
    pub references: Vec<(Path, Reference)>,
    /// Every misuse of the reference syntax, and every key raydar reserves for itself.
    pub errors: Vec<(Path, String)>,
}

/// Label and annotation keys under this prefix are set by raydar's policy alone.
pub(super) const RESERVED_PREFIX: &str = "raydar.dev/";

/// True for a valid parameter name: a letter, then letters, digits or `_`.
pub(super) fn is_parameter_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads a string value: `Ok(None)` for plain text, `Ok(Some(..))` for a reference, `Err` with
/// the reason for a misuse.
fn parse_reference(text: &str) -> Result<Option<Reference>, String> {
    if !text.contains("{{") {
        return Ok(None);
    }
    let inner = text
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
    let Some(inner) = inner else {
        return Err(format!(
            "a parameter reference must be the whole value, exactly \"{{{{ name }}}}\", got {}",
            super::check::quoted(text)
        ));
    };
    let (name, conversion) = match inner.split_once('|') {
        Some((name, conversion)) => (name.trim(), Some(conversion.trim())),
        None => (inner.trim(), None),
    };
    if !is_parameter_name(name) {
        return Err(format!(
            "{} is not a parameter name (a letter, then letters, digits or _)",
            super::check::quoted(name)
        ));
    }
    match conversion {
        None => Ok(Some(Reference { name: name.to_owned(), as_string: false })),
        Some("string") => Ok(Some(Reference { name: name.to_owned(), as_string: true })),
        Some(other) => Err(format!(
            "unknown conversion {}: only \"| string\" exists",
            super::check::quoted(other)
        )),
    }
}

/// Finds every reference and every misuse in a document.
pub(super) fn scan(document: &Value) -> Scan {
    let mut found = Scan::default();
    let mut path = Vec::new();
    scan_into(document, &mut path, &mut found);
    found
}

fn scan_into(value: &Value, path: &mut Path, found: &mut Scan) {
    match value {
        Value::String(text) => match parse_reference(text) {
            Ok(Some(reference)) => found.references.push((path.clone(), reference)),
            Ok(None) => {}
            Err(message) => found.errors.push((path.clone(), message)),
        },
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                scan_into(item, path, found);
                path.pop();
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                path.push(Segment::Key(key.clone()));
                if key.contains("{{") {
                    found.errors.push((
                        path.clone(),
                        "a parameter may only stand as a value, not in a key".to_owned(),
                    ));
                } else if key.starts_with(RESERVED_PREFIX) {
                    found.errors.push((
                        path.clone(),
                        format!("keys under {RESERVED_PREFIX} are set by raydar alone"),
                    ));
                }
                scan_into(item, path, found);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The value at `path`, if the document has one there.
pub(super) fn get<'a>(document: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    path.iter().try_fold(document, |value, segment| match segment {
        Segment::Key(key) => value.get(key),
        Segment::Index(index) => value.get(index),
    })
}

/// The value at `path`, mutably.
pub(super) fn get_mut<'a>(document: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    path.iter().try_fold(document, |value, segment| match segment {
        Segment::Key(key) => value.get_mut(key),
        Segment::Index(index) => value.get_mut(index),
    })
}

/// Writes a path for people: `spec.workerGroupSpecs[0].resources.limits["nvidia.com/gpu"]`.
pub(super) fn display_path(prefix: &str, path: &[Segment]) -> String {
    let mut text = prefix.to_owned();
    for segment in path {
        // Writing to a String cannot fail.
        let _ = match segment {
            Segment::Index(index) => write!(text, "[{index}]"),
            Segment::Key(key)
                if !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                write!(text, ".{key}")
            }
            Segment::Key(key) => write!(text, "[{key:?}]"),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn whole_values_only() {
        let reference =
            |name: &str, as_string| Some(Reference { name: name.to_owned(), as_string });
        assert_eq!(parse_reference("{{ workers }}"), Ok(reference("workers", false)));
        assert_eq!(parse_reference("{{workers}}"), Ok(reference("workers", false)));
        assert_eq!(parse_reference("{{ cpus | string }}"), Ok(reference("cpus", true)));
        assert_eq!(parse_reference("plain"), Ok(None));
        for misuse in [
            "x{{ a }}",
            "{{ a }} ",
            "{{ a }}{{ b }}",
            "{{ a",
            "{{ 1a }}",
            "{{ a | upper }}",
            "{{ }}",
            "{{ a.b }}",
        ] {
            assert!(parse_reference(misuse).is_err(), "{misuse}");
        }
    }

    #[test]
    fn scan_names_paths() {
        let document = json!({
            "a": [{"b": "{{ x }}"}, "text {{ y }}"],
            "{{ k }}": 1,
            "labels": {"raydar.dev/owner": "me"}
        });
        let found = scan(&document);
        let paths: Vec<_> = found
            .references
            .iter()
            .map(|(p, r)| (display_path("spec", p), r.name.clone()))
            .collect();
        assert_eq!(paths, [("spec.a[0].b".to_owned(), "x".to_owned())]);
        let errors: Vec<_> = found.errors.iter().map(|(p, _)| display_path("spec", p)).collect();
        assert_eq!(errors, ["spec.a[1]", "spec.labels[\"raydar.dev/owner\"]", "spec[\"{{ k }}\"]"]);
    }
}
