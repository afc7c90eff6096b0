//! Which keys a file has, and which `TOLLGATE_*` variables are not its settings.

use super::{KEYS, Key};

/// One file's keys: where the file is, how the environment overrides its keys, and which
/// variables under that prefix belong to something else. The loader, the "unknown key" help
/// and the README's table for that file all read it.
#[derive(Debug)]
pub struct Registry {
    /// The file read when no path is given and it exists (`tollgate.toml`).
    pub default_path: &'static str,
    /// The variable naming the file (`TOLLGATE_CONFIG`).
    pub path_env: &'static str,
    pub keys: &'static [Key],
    /// Overrides are `<env_prefix><KEY>`, or `<env_prefix><SECTION>_<KEY>`.
    pub env_prefix: &'static str,
    /// Variables under the prefix that are not settings; one ending in `_` is a prefix.
    pub not_settings: &'static [&'static str],
}

/// The worker's (and the CLI's) `tollgate.toml`.
pub const WORKER: Registry = Registry {
    default_path: crate::DEFAULT_PATH,
    path_env: crate::PATH_ENV,
    keys: KEYS,
    env_prefix: "TOLLGATE_",
    not_settings: NOT_SETTINGS,
};

/// `TOLLGATE_*` variables that are not the worker's settings (everything else under the
/// prefix must be). `LINK_SECRET` is the link key the gateway and the worker share by default.
/// `PAYLOAD_KEYS` are the payload codec's keys, read by every process that talks to Temporal;
/// `GATEWAY_*` are the gateway's: its file and settings, and where `tollgate approval ask`
/// reaches it (`GATEWAY_URL`, `GATEWAY_TOKEN`), and so are its sign-in secrets.
pub const NOT_SETTINGS: &[&str] = &[
    "CONFIG",
    "TEMPORAL_BIN",
    "RECORD_HISTORIES",
    "ARTIFACT_KEY",
    "LINK_SECRET",
    "PAYLOAD_KEYS",
    "GATEWAY_",
    "OIDC_CLIENT_SECRET",
    "SESSION_SECRET",
];

impl Registry {
    /// The key named `name`.
    pub fn find(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The sections whose keys are written `<prefix><SECTION>_<KEY>` in the environment.
    pub fn sections(&self) -> Vec<&'static str> {
        let mut sections: Vec<&str> = self.keys.iter().filter_map(|k| k.name.split_once('.').map(|(s, _)| s)).collect();
        sections.dedup();
        sections
    }

    /// The README's configuration table for this file.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
        for k in self.keys {
            // The activity names come from their one list, so the README cannot miss one.
            let doc = k.doc.replace("{activities}", &tollgate_proto::words::ActivityName::listed());
            out.push_str(&format!("| `{}` | {} | {} |\n", k.name, k.default, doc));
        }
        out
    }

    /// Every key name, for "known keys" help.
    pub fn names(&self) -> String {
        self.keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
    }

    /// Whether `<prefix><rest>` is one of this file's settings rather than another's variable.
    pub fn is_setting(&self, rest: &str) -> bool {
        !self.not_settings.iter().any(|n| if n.ends_with('_') { rest.starts_with(n) } else { rest == *n })
    }
}
