//! What every section's validation shares: errors that name the key and where the value came
//! from, durations, and URLs.

use crate::ConfigError;

/// Validation context: where the values came from (the file, with or without overrides).
pub(crate) struct Check<'a> {
    pub origin: &'a str,
}

impl Check<'_> {
    /// `<origin>: <key>: <message>`.
    pub fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { source_name: self.origin.to_string(), message: format!("{key}: {}", message.into()) }
    }

    /// A duration in milliseconds: the configured text, or `default_ms`.
    pub fn duration(&self, key: &str, value: &Option<String>, default_ms: u64) -> Result<u64, ConfigError> {
        let Some(text) = value.as_deref() else { return Ok(default_ms) };
        humantime::parse_duration(text).map(|d| d.as_millis() as u64).map_err(|e| {
            self.err(key, format!("'{text}' is not a duration ({e}); use forms like 30s, 5m, 5h, 30d, 1w"))
        })
    }

    /// A duration that must be longer than zero.
    pub fn positive(&self, key: &str, value: &Option<String>, default_ms: u64) -> Result<u64, ConfigError> {
        let ms = self.duration(key, value, default_ms)?;
        if ms == 0 { Err(self.err(key, "must be longer than zero")) } else { Ok(ms) }
    }

    /// A positive duration as a `Duration`.
    pub fn span(&self, key: &str, value: &Option<String>, default_ms: u64) -> Result<std::time::Duration, ConfigError> {
        self.positive(key, value, default_ms).map(std::time::Duration::from_millis)
    }
}

/// Whether `url` is http(s).
pub(crate) fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// A text value with surrounding blanks removed; blank counts as unset.
pub(crate) fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}
