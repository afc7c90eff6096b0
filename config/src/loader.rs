//! The one loader both files (`tollgate.toml`, `gateway.toml`) go through: find and read the
//! file, parse it (a syntax error names its line and column), write the environment's
//! overrides in, refuse a key the file's registry does not know or a value of the wrong kind,
//! then let each part deserialize with the path to a bad value named (`users[1].name`).

use std::path::{Path, PathBuf};

use crate::ConfigError;
use crate::env;
use crate::keys::{KeyKind, Registry};

/// The file's text and what to call it: `path`, else the registry's path variable, else its
/// default file if it exists, else no file at all ("defaults"). A named file must exist.
pub(crate) fn read_file(path: Option<&Path>, registry: &Registry) -> Result<(String, String), ConfigError> {
    let explicit = path.map(Path::to_path_buf).or_else(|| std::env::var_os(registry.path_env).map(PathBuf::from));
    let path = match explicit {
        Some(p) => p,
        None if Path::new(registry.default_path).exists() => PathBuf::from(registry.default_path),
        None => return Ok((String::new(), "defaults".to_string())),
    };
    let source_name = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text, source_name)),
        Err(error) => Err(ConfigError::Read { source_name, error }),
    }
}

/// The file's table with the overrides in `env` applied, and where its values came from
/// (`source`, or `source (with TOLLGATE_* overrides)`), once every key is known and of its kind.
pub(crate) fn table(
    text: &str,
    source: &str,
    env: &[(String, String)],
    registry: &Registry,
) -> Result<(toml::Table, String), ConfigError> {
    let invalid =
        |source_name: &str, message: String| ConfigError::Invalid { source_name: source_name.to_string(), message };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(source, describe_parse_error(text, &e)))?;
    env::apply(&mut table, env, registry)?;
    let origin = if env::overrides_any(env, registry) {
        format!("{source} (with {}* overrides)", registry.env_prefix)
    } else {
        source.to_string()
    };
    if let Some(message) = unknown_key(&table, registry).or_else(|| wrong_type(&table, registry)) {
        return Err(invalid(&origin, message));
    }
    Ok((table, origin))
}

/// One part of the file; an error names the path to the value it is about.
pub(crate) fn part<T: serde::de::DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().message().trim().to_string();
        if path == "." { message } else { format!("{path}: {message}") }
    })
}

/// A top-level key the registry does not know (a section's own keys are checked by its
/// struct, which refuses unknown fields).
fn unknown_key(table: &toml::Table, registry: &Registry) -> Option<String> {
    let sections = registry.sections();
    let known = |name: &str| registry.find(name).is_some_and(|k| !k.name.contains('.')) || sections.contains(&name);
    let unknown = table.keys().find(|k| !known(k))?;
    Some(format!("unknown field `{unknown}` (known keys: {})", registry.names()))
}

/// The first key whose value is not of its registered kind, named with the kind and its
/// default (serde's message would say "expected i64").
fn wrong_type(table: &toml::Table, registry: &Registry) -> Option<String> {
    use toml::Value as V;
    registry.keys.iter().find_map(|key| {
        let value = match key.name.split_once('.') {
            Some((section, name)) => table.get(section)?.as_table()?.get(name)?,
            None => table.get(key.name)?,
        };
        let fits = match key.kind {
            KeyKind::Text | KeyKind::Duration => value.is_str(),
            KeyKind::List | KeyKind::Tables => value.is_array(),
            KeyKind::Integer => value.is_integer(),
            KeyKind::Number => matches!(value, V::Integer(_) | V::Float(_)),
            KeyKind::Boolean => value.is_bool(),
            KeyKind::Table => value.is_table(),
        };
        (!fits).then(|| {
            let default = key.default.replace('`', "");
            format!("{}: {value} is not {} (default {default})", key.name, key.kind.allowed())
        })
    })
}

/// toml's message for text that is not TOML, with the line and column it stopped at.
fn describe_parse_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let Some(span) = e.span() else { return message.to_string() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}
