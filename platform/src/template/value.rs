//! What a launcher types, checked: a parameter's value parsed by its type and held to its bounds
//! or allowed values, and the cluster's name and namespace. Pure, so the launch form in the
//! browser checks what is typed by the same rules (and with the same messages) as the server does
//! when it renders; only a string parameter's pattern is matched by the caller, because the
//! server's regex engine does not belong in the browser.

use std::time::Duration;

use super::duration::{format_duration, parse_duration};
use super::parameter::{ParameterKind, Scalar, TemplateParameter};
use super::quantity::Quantity;

/// Longest RayCluster name: KubeRay derives pod and service names from it by adding suffixes,
/// which must still fit in 63 characters.
const MAX_CLUSTER_NAME: usize = 53;
/// Longest namespace name (a DNS label).
const MAX_LABEL: usize = 63;

/// Longest excerpt of a rejected value quoted back in a message: a 10 kB value must not become a
/// 10 kB error.
const QUOTE_CHARS: usize = 40;

/// A checked value, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum ParameterValue {
    /// From an integer parameter.
    Integer(i64),
    /// From a string, enum or quantity parameter.
    Text(String),
    /// From a duration parameter.
    Duration(Duration),
}

impl ParameterValue {
    /// The value as a launcher would type it: `8Gi`, `1h30m`, `4`.
    pub fn text(&self) -> String {
        match self {
            ParameterValue::Integer(n) => n.to_string(),
            ParameterValue::Text(text) => text.clone(),
            ParameterValue::Duration(d) => format_duration(*d),
        }
    }
}

/// Bounds of a parameter, parsed by its type.
#[derive(Debug)]
pub(crate) enum Bounds {
    Integer(Option<i64>, Option<i64>),
    Quantity(Option<Quantity>, Option<Quantity>),
    Duration(Option<Duration>, Option<Duration>),
    None,
}

impl Bounds {
    /// The parameter's bounds; a bound that does not parse is `None` here and reported by the
    /// template's validation (`errors` gets `(field, message)`).
    pub(crate) fn of(
        parameter: &TemplateParameter,
        errors: &mut Vec<(&'static str, String)>,
    ) -> Bounds {
        let kind = parameter.kind;
        let takes_bounds = matches!(
            kind,
            ParameterKind::Integer | ParameterKind::Quantity | ParameterKind::Duration
        );
        let mut bound = |field: &'static str, scalar: &Option<Scalar>| {
            let scalar = scalar.as_ref()?;
            if !takes_bounds {
                errors.push((
                    field,
                    format!("only integer, quantity and duration parameters have a {field}"),
                ));
                return None;
            }
            let parsed = parse_bound(kind, scalar);
            if parsed.is_none() {
                errors.push((
                    field,
                    format!("{} is not {}", quoted(&scalar.to_string()), describe_kind(kind)),
                ));
            }
            parsed
        };
        let (min, max) = (bound("min", &parameter.min), bound("max", &parameter.max));
        let bounds = match kind {
            ParameterKind::Integer => {
                Bounds::Integer(min.and_then(Bound::integer), max.and_then(Bound::integer))
            }
            ParameterKind::Quantity => {
                Bounds::Quantity(min.and_then(Bound::quantity), max.and_then(Bound::quantity))
            }
            ParameterKind::Duration => {
                Bounds::Duration(min.and_then(Bound::duration), max.and_then(Bound::duration))
            }
            ParameterKind::String | ParameterKind::Enum => Bounds::None,
        };
        if bounds.inverted() {
            errors.push(("max", "must not be below min".to_owned()));
        }
        bounds
    }

    /// Parses `text` for a bounded kind and checks it against the bounds; `None` for text that
    /// is not a value within them. String and enum text is the caller's to check.
    pub(crate) fn parse(&self, text: &str) -> Option<ParameterValue> {
        let text = text.trim();
        match self {
            Bounds::Integer(min, max) => {
                let n = text.parse::<i64>().ok()?;
                within(n, *min, *max).then_some(ParameterValue::Integer(n))
            }
            Bounds::Quantity(min, max) => {
                let quantity = Quantity::parse(text).ok().filter(|q| !q.is_negative())?;
                within(quantity, *min, *max).then(|| ParameterValue::Text(text.to_owned()))
            }
            Bounds::Duration(min, max) => {
                let duration = parse_duration(text).ok()?;
                within(duration, *min, *max).then_some(ParameterValue::Duration(duration))
            }
            Bounds::None => None,
        }
    }

    fn inverted(&self) -> bool {
        match self {
            Bounds::Integer(Some(min), Some(max)) => min > max,
            Bounds::Quantity(Some(min), Some(max)) => min > max,
            Bounds::Duration(Some(min), Some(max)) => min > max,
            _ => false,
        }
    }
}

impl TemplateParameter {
    /// What the parameter accepts, for messages and help text: "an integer from 0 to 16".
    pub fn allowed(&self) -> String {
        let what = match self.kind {
            ParameterKind::Enum => return format!("one of {}", self.values.join(", ")),
            ParameterKind::String => {
                return format!(
                    "text matching the pattern {}",
                    self.pattern.as_deref().unwrap_or_default()
                )
            }
            kind => describe_kind(kind),
        };
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => format!("{what} from {min} to {max}"),
            (Some(min), None) => format!("{what} of at least {min}"),
            (None, Some(max)) => format!("{what} of at most {max}"),
            (None, None) => what.to_owned(),
        }
    }

    /// The message for a request that leaves out a parameter without a default.
    pub fn missing(&self) -> String {
        format!("is required: {}", self.allowed())
    }

    /// Checks text typed into the parameter's field, as rendering will; the error is the
    /// field's message. A string parameter's pattern is matched by `matches_pattern` (the
    /// browser's RegExp in the launch form, the regex crate on the server).
    pub fn check_text(
        &self,
        text: &str,
        matches_pattern: impl FnOnce(&str) -> bool,
    ) -> Result<ParameterValue, String> {
        let value = match self.kind {
            ParameterKind::String => {
                matches_pattern(text).then(|| ParameterValue::Text(text.to_owned()))
            }
            ParameterKind::Enum => {
                self.values.iter().any(|v| v == text).then(|| ParameterValue::Text(text.to_owned()))
            }
            _ => Bounds::of(self, &mut Vec::new()).parse(text),
        };
        value.ok_or_else(|| rejected(self, &quoted(text)))
    }
}

/// The message for a value the parameter does not accept; `given` is already quoted.
pub(crate) fn rejected(parameter: &TemplateParameter, given: &str) -> String {
    format!("must be {}, got {given}", parameter.allowed())
}

/// Why `name` is not a valid RayCluster name (DNS-1035 label of at most 53 characters).
pub fn cluster_name_problem(name: &str) -> Option<String> {
    let valid = name.len() <= MAX_CLUSTER_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && is_dns_label_body(name);
    (!valid).then(|| {
        format!(
            "must be at most {MAX_CLUSTER_NAME} characters of lowercase letters, digits and '-', starting with a \
             letter and ending with a letter or digit, got {}",
            quoted(name)
        )
    })
}

/// Why `namespace` is not a valid namespace name (DNS-1123 label).
pub fn namespace_problem(namespace: &str) -> Option<String> {
    let valid = namespace.len() <= MAX_LABEL && is_dns_label_body(namespace);
    (!valid).then(|| {
        format!(
            "must be at most {MAX_LABEL} characters of lowercase letters, digits and '-', starting and ending \
             with a letter or digit, got {}",
            quoted(namespace)
        )
    })
}

/// Lowercase letters, digits and `-`, starting and ending with a letter or digit.
pub fn is_dns_label_body(text: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    text.starts_with(edge)
        && text.ends_with(edge)
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A parsed bound; which variant follows from the parameter's kind.
enum Bound {
    Integer(i64),
    Quantity(Quantity),
    Duration(Duration),
}

impl Bound {
    fn integer(self) -> Option<i64> {
        if let Bound::Integer(n) = self {
            Some(n)
        } else {
            None
        }
    }
    fn quantity(self) -> Option<Quantity> {
        if let Bound::Quantity(q) = self {
            Some(q)
        } else {
            None
        }
    }
    fn duration(self) -> Option<Duration> {
        if let Bound::Duration(d) = self {
            Some(d)
        } else {
            None
        }
    }
}

fn parse_bound(kind: ParameterKind, scalar: &Scalar) -> Option<Bound> {
    match (kind, scalar) {
        (ParameterKind::Integer, Scalar::Integer(n)) => Some(Bound::Integer(*n)),
        (ParameterKind::Integer, Scalar::Text(text)) => text.parse().ok().map(Bound::Integer),
        (ParameterKind::Quantity, Scalar::Integer(n)) => {
            Quantity::parse(&n.to_string()).ok().map(Bound::Quantity)
        }
        (ParameterKind::Quantity, Scalar::Text(text)) => {
            Quantity::parse(text).ok().map(Bound::Quantity)
        }
        (ParameterKind::Duration, Scalar::Text(text)) => {
            parse_duration(text).ok().map(Bound::Duration)
        }
        _ => None,
    }
    .filter(|bound| !matches!(bound, Bound::Quantity(q) if q.is_negative()))
}

fn describe_kind(kind: ParameterKind) -> &'static str {
    match kind {
        ParameterKind::Integer => "an integer",
        ParameterKind::Quantity => "a non-negative Kubernetes quantity like 500m, 4 or 8Gi",
        ParameterKind::Duration => "a duration like 30m, 2h or 1h30m",
        ParameterKind::String => "text",
        ParameterKind::Enum => "one of the values",
    }
}

fn within<T: PartialOrd>(value: T, min: Option<T>, max: Option<T>) -> bool {
    min.is_none_or(|min| value >= min) && max.is_none_or(|max| value <= max)
}

/// A value quoted back in a message, cut short and with control characters escaped.
pub fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter(
        kind: ParameterKind,
        min: Option<Scalar>,
        max: Option<Scalar>,
    ) -> TemplateParameter {
        TemplateParameter {
            name: "p".into(),
            kind,
            description: String::new(),
            default: None,
            min,
            max,
            pattern: None,
            values: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn typed_text_is_held_to_the_bounds_with_the_servers_message() {
        let workers =
            parameter(ParameterKind::Integer, Some(Scalar::Integer(0)), Some(Scalar::Integer(4)));
        assert_eq!(workers.check_text(" 3 ", |_| true), Ok(ParameterValue::Integer(3)));
        assert_eq!(
            workers.check_text("5", |_| true),
            Err("must be an integer from 0 to 4, got \"5\"".into())
        );
        let memory = parameter(ParameterKind::Quantity, None, Some(Scalar::Text("64Gi".into())));
        assert!(memory.check_text("8Gi", |_| true).is_ok());
        assert!(memory.check_text("65Gi", |_| true).unwrap_err().contains("at most 64Gi"));
        assert!(memory.check_text("-1", |_| true).is_err());
        let lifetime = parameter(ParameterKind::Duration, Some(Scalar::Text("10m".into())), None);
        assert_eq!(lifetime.check_text("1h30m", |_| true).map(|v| v.text()), Ok("1h30m".into()));
        assert!(lifetime.check_text("5m", |_| true).is_err());
    }

    #[test]
    fn enum_and_string_values_are_matched_whole() {
        let choice = parameter(ParameterKind::Enum, None, None);
        assert!(choice.check_text("a", |_| false).is_ok());
        assert_eq!(choice.check_text("c", |_| true), Err("must be one of a, b, got \"c\"".into()));
        let text = TemplateParameter {
            pattern: Some("[a-z]+".into()),
            ..parameter(ParameterKind::String, None, None)
        };
        assert!(text.check_text("abc", |t| t == "abc").is_ok());
        assert!(text
            .check_text("ABC", |_| false)
            .unwrap_err()
            .contains("matching the pattern [a-z]+"));
    }
}
