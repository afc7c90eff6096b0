//! Reading JSON bodies by hand, so every mistake gets a 422 that names the field and the fix
//! (axum's extractors answer in plain text and stop at the first serde error).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The body as a JSON object; an empty body is an empty object.
pub fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_body(format!("the body is not valid JSON ({e})")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid_body(format!("the body must be a JSON object, got {}", kind(&value))));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(ApiError::invalid(unknown, format!("unknown field '{shown}' (allowed: {})", allowed.join(", "))));
    }
    Ok(map)
}

/// An optional string field (null counts as absent), at most `max_chars`, trimmed.
pub fn text(map: &Map<String, Value>, field: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max_chars {
                return Err(ApiError::invalid(field, format!("{field} is longer than {max_chars} characters")));
            }
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Some(other) => Err(ApiError::invalid(field, format!("{field} must be a string, got {}", kind(other)))),
    }
}

/// A required string field.
pub fn required_text(map: &Map<String, Value>, field: &str, max_chars: usize) -> Result<String, ApiError> {
    text(map, field, max_chars)?
        .ok_or_else(|| ApiError::invalid(field, format!("{field} is required (a non-empty string)")))
}

pub use tollgate_workflows::incoming::json_type as kind;
