//! Checking a launcher's value against its parameter: parse by type, then bounds, pattern or
//! allowed values. Every failure says what is allowed and what was given.

use regex::Regex;
use serde_json::Value;

use super::duration::format_duration;
use super::parameter::{ParameterKind, Scalar, TemplateParameter};
pub(super) use super::value::quoted;
pub(super) use super::value::ParameterValue;
use super::value::{rejected, Bounds};

/// A parameter ready to check values: bounds parsed, pattern compiled.
#[derive(Debug)]
pub(super) struct ParameterCheck<'a> {
    /// The parameter as the template declares it.
    pub parameter: &'a TemplateParameter,
    bounds: Bounds,
    pattern: Option<Regex>,
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
        let bounds = Bounds::of(parameter, &mut errors);

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
        let text = match value {
            // A JSON integer is taken as it is: no round trip through text for huge numbers.
            Value::Number(number) if self.parameter.kind == ParameterKind::Integer => {
                return number
                    .as_i64()
                    .and_then(|n| self.bounds.parse(&n.to_string()))
                    .ok_or_else(|| rejected(self.parameter, &number.to_string()));
            }
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            other => return Err(rejected(self.parameter, &quoted(&other.to_string()))),
        };
        let parsed = match &self.bounds {
            Bounds::None => {
                let pattern = &self.pattern;
                self.parameter
                    .check_text(&text, |text| pattern.as_ref().is_some_and(|p| p.is_match(text)))
                    .ok()
            }
            bounded => bounded.parse(&text),
        };
        parsed.ok_or_else(|| {
            let given =
                if matches!(value, Value::Number(_)) { text.clone() } else { quoted(&text) };
            rejected(self.parameter, &given)
        })
    }
}

/// Compiles a pattern that the whole value must match, as HTML forms read `pattern`. The size
/// limit keeps a careless pattern from costing the server megabytes per launch.
fn anchored(pattern: &str) -> Result<Regex, String> {
    let invalid = |e: &dyn std::fmt::Display| format!("not a valid regular expression: {e}");
    // Parsed alone first: only a pattern whose groups balance on their own stays inside the
    // anchors (`a)|(b` would otherwise turn `^(?:a)|(b)$` into an unanchored alternative).
    regex_syntax::Parser::new().parse(pattern).map_err(|e| invalid(&e))?;
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| invalid(&e))
}

/// A default or bound as the JSON value a request would carry.
pub(super) fn scalar_json(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Integer(n) => Value::from(*n),
        Scalar::Text(text) => Value::from(text.as_str()),
    }
}
