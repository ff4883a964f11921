//! Checking a launcher's value against its parameter: parse by type, then bounds, pattern or
//! allowed values. Every failure says what is allowed and what was given.

use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use super::duration::{format_duration, parse_duration};
use super::parameter::{ParameterKind, Scalar, TemplateParameter};
use super::quantity::Quantity;

/// Longest excerpt of a rejected value quoted back in a message: a 10 kB value must not become a
/// 10 kB error.
const QUOTE_CHARS: usize = 40;

/// A parameter ready to check values: bounds parsed, pattern compiled.
#[derive(Debug)]
pub(super) struct ParameterCheck<'a> {
    /// The parameter as the template declares it.
    pub parameter: &'a TemplateParameter,
    bounds: Bounds,
    pattern: Option<Regex>,
}

/// Bounds of a parameter, parsed by its type.
#[derive(Debug)]
enum Bounds {
    Integer(Option<i64>, Option<i64>),
    Quantity(Option<Quantity>, Option<Quantity>),
    Duration(Option<Duration>, Option<Duration>),
    None,
}

/// A checked value, typed.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum ParameterValue {
    /// From an integer parameter.
    Integer(i64),
    /// From a string, enum or quantity parameter.
    Text(String),
    /// From a duration parameter.
    Duration(Duration),
}

impl ParameterValue {
    /// What the value becomes in the document: integers and durations (as seconds) are numbers,
    /// the rest strings; `as_string` turns every kind into its text.
    pub fn to_json(&self, as_string: bool) -> Value {
        match (self, as_string) {
            (ParameterValue::Integer(n), false) => Value::from(*n),
            (ParameterValue::Integer(n), true) => Value::from(n.to_string()),
            (ParameterValue::Text(text), _) => Value::from(text.as_str()),
            (ParameterValue::Duration(d), false) => Value::from(d.as_secs()),
            (ParameterValue::Duration(d), true) => Value::from(format_duration(*d)),
        }
    }
}

impl<'a> ParameterCheck<'a> {
    /// Parses the parameter's bounds and pattern; errors are `(field under the parameter, message)`.
    pub fn new(parameter: &'a TemplateParameter) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let kind = parameter.kind;
        let takes_bounds =
            matches!(kind, ParameterKind::Integer | ParameterKind::Quantity | ParameterKind::Duration);
        let mut bound = |field: &'static str, scalar: &Option<Scalar>| {
            let scalar = scalar.as_ref()?;
            if !takes_bounds {
                errors
                    .push((field, format!("only integer, quantity and duration parameters have a {field}")));
                return None;
            }
            let parsed = parse_bound(kind, scalar);
            if parsed.is_none() {
                errors
                    .push((field, format!("{} is not {}", quoted(&scalar.to_string()), describe_kind(kind))));
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

        let pattern = match (&parameter.pattern, kind) {
            (Some(pattern), ParameterKind::String) => match anchored(pattern) {
                Ok(regex) => Some(regex),
                Err(message) => {
                    errors.push(("pattern", message));
                    None
                }
            },
            (None, ParameterKind::String) => {
                errors.push((
                    "pattern",
                    "a string parameter needs a pattern that says what it accepts".to_owned(),
                ));
                None
            }
            (Some(_), _) => {
                errors.push(("pattern", "only string parameters have a pattern".to_owned()));
                None
            }
            (None, _) => None,
        };

        match (parameter.values.is_empty(), kind) {
            (true, ParameterKind::Enum) => {
                errors.push(("values", "an enum parameter needs its allowed values".to_owned()))
            }
            (false, ParameterKind::Enum) => {
                let mut seen = std::collections::BTreeSet::new();
                if let Some(twice) = parameter.values.iter().find(|v| !seen.insert(v.as_str())) {
                    errors.push(("values", format!("{} is listed twice", quoted(twice))));
                }
            }
            (false, _) => errors.push(("values", "only enum parameters have values".to_owned())),
            (true, _) => {}
        }

        if errors.is_empty() {
            Ok(ParameterCheck { parameter, bounds, pattern })
        } else {
            Err(errors)
        }
    }

    /// Checks a value from a request (a JSON string or number) or a default; the error is the
    /// message for the parameter's field.
    pub fn check(&self, value: &Value) -> Result<ParameterValue, String> {
        self.parse(value).ok_or_else(|| format!("must be {}, got {}", self.allowed(), quoted_json(value)))
    }

    fn parse(&self, value: &Value) -> Option<ParameterValue> {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => return None,
        };
        match &self.bounds {
            Bounds::Integer(min, max) => {
                let n = match value {
                    Value::Number(number) => number.as_i64()?,
                    _ => text.trim().parse::<i64>().ok()?,
                };
                within(n, *min, *max).then_some(ParameterValue::Integer(n))
            }
            Bounds::Quantity(min, max) => {
                let text = text.trim();
                let quantity = Quantity::parse(text).ok().filter(|q| !q.is_negative())?;
                within(quantity, *min, *max).then(|| ParameterValue::Text(text.to_owned()))
            }
            Bounds::Duration(min, max) => {
                let duration = parse_duration(text.trim()).ok()?;
                within(duration, *min, *max).then_some(ParameterValue::Duration(duration))
            }
            Bounds::None => {
                let allowed = match &self.pattern {
                    Some(pattern) => pattern.is_match(&text),
                    None => self.parameter.values.contains(&text),
                };
                allowed.then_some(ParameterValue::Text(text))
            }
        }
    }

    /// What the parameter accepts, for messages: "an integer from 0 to 16".
    pub fn allowed(&self) -> String {
        let parameter = self.parameter;
        let what = match parameter.kind {
            ParameterKind::Enum => return format!("one of {}", parameter.values.join(", ")),
            ParameterKind::String => {
                return format!(
                    "text matching the pattern {}",
                    parameter.pattern.as_deref().unwrap_or_default()
                )
            }
            kind => describe_kind(kind),
        };
        match (&parameter.min, &parameter.max) {
            (Some(min), Some(max)) => format!("{what} from {min} to {max}"),
            (Some(min), None) => format!("{what} of at least {min}"),
            (None, Some(max)) => format!("{what} of at most {max}"),
            (None, None) => what.to_owned(),
        }
    }
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

impl Bounds {
    fn inverted(&self) -> bool {
        match self {
            Bounds::Integer(Some(min), Some(max)) => min > max,
            Bounds::Quantity(Some(min), Some(max)) => min > max,
            Bounds::Duration(Some(min), Some(max)) => min > max,
            _ => false,
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
        (ParameterKind::Quantity, Scalar::Text(text)) => Quantity::parse(text).ok().map(Bound::Quantity),
        (ParameterKind::Duration, Scalar::Text(text)) => parse_duration(text).ok().map(Bound::Duration),
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

/// Compiles a pattern that the whole value must match, as HTML forms read `pattern`. The size
/// limit keeps a careless pattern from costing the server megabytes per launch.
fn anchored(pattern: &str) -> Result<Regex, String> {
    let invalid = |e: &dyn std::fmt::Display| format!("not a valid regular expression: {e}");
    // Parsed alone first: only a pattern whose groups balance on their own stays inside the
    // anchors (`a)|(b` would otherwise turn `^(?:a)|(b)$` into an unanchored alternative).
    regex_syntax::Parser::new().parse(pattern).map_err(|e| invalid(&e))?;
    regex::RegexBuilder::new(&format!("^(?:{pattern})$")).size_limit(1 << 20).build().map_err(|e| invalid(&e))
}

/// A default or bound as the JSON value a request would carry.
pub(super) fn scalar_json(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Integer(n) => Value::from(*n),
        Scalar::Text(text) => Value::from(text.as_str()),
    }
}

/// A value quoted back in a message, cut short and with control characters escaped.
pub(super) fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

fn quoted_json(value: &Value) -> String {
    match value {
        Value::String(text) => quoted(text),
        Value::Number(number) => number.to_string(),
        other => quoted(&other.to_string()),
    }
}
