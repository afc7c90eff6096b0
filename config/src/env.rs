//! Environment overrides: each variable names a key of a file's registry
//! (`TOLLGATE_GRACE_PERIOD`, `TOLLGATE_NOTIFICATIONS_WEBHOOK_URL`, `TOLLGATE_GATEWAY_LISTEN`)
//! and is parsed by its kind.

use crate::ConfigError;
use crate::keys::{KeyKind, Registry};

/// Whether any variable in `env` overrides one of `registry`'s settings.
pub fn overrides_any(env: &[(String, String)], registry: &Registry) -> bool {
    env.iter().any(|(k, _)| k.strip_prefix(registry.env_prefix).is_some_and(|rest| registry.is_setting(rest)))
}

/// Writes every override of `registry`'s keys in `env` into `table`.
pub fn apply(table: &mut toml::Table, env: &[(String, String)], registry: &Registry) -> Result<(), ConfigError> {
    let invalid = |source_name: String, message: String| ConfigError::Invalid { source_name, message };
    let sections = registry.sections();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(registry.env_prefix) else { continue };
        if !registry.is_setting(rest) {
            continue;
        }
        let mut key = rest.to_ascii_lowercase();
        if let Some(section) = sections.iter().find(|s| key.starts_with(&format!("{s}_"))) {
            key = key.replacen(&format!("{section}_"), &format!("{section}."), 1);
        }
        let Some(known) = registry.find(&key) else {
            return Err(invalid(
                format!("environment {name}"),
                format!("unknown setting; known keys: {}", registry.names()),
            ));
        };
        let parsed = parse(known.kind, value).ok_or_else(|| {
            invalid(format!("environment {name}={value}"), format!("must be {}", known.kind.allowed()))
        })?;
        insert_dotted(table, &key, parsed);
    }
    Ok(())
}

fn parse(kind: KeyKind, value: &str) -> Option<toml::Value> {
    let v = value.trim();
    Some(match kind {
        KeyKind::Text | KeyKind::Duration => toml::Value::String(v.to_string()),
        KeyKind::Table => {
            let mut table = toml::Table::new();
            for pair in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, value) = pair.split_once('=')?;
                table.insert(name.trim().to_string(), toml::Value::String(value.trim().to_string()));
            }
            toml::Value::Table(table)
        }
        KeyKind::List => toml::Value::Array(
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        ),
        KeyKind::Integer => toml::Value::Integer(v.parse().ok()?),
        KeyKind::Number => toml::Value::Float(v.parse().ok()?),
        KeyKind::Boolean => toml::Value::Boolean(v.parse().ok()?),
        KeyKind::Tables => return None,
    })
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((section, rest)) => {
            let entry = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(rest.to_string(), value);
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}
