//! Links into the Temporal Web UI: a request's page, and request lists prefilled with a
//! visibility query (the UI reads the `query` parameter of its workflows page).

use temporalio_client::ClientOptions;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;

/// The Web UI's address and the namespace to link into: `configured` (`web_ui_url`) when
/// set, else the dev server's convention (the UI on port + 1000) for a local address. None
/// for a remote server with no `web_ui_url`: its UI could be anywhere.
pub fn locate(configured: Option<&str>) -> Option<WebUi> {
    let (conn, client) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default()).ok()?;
    let base = match configured {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let host = conn.target.host_str()?;
            let port = conn.target.port_or_known_default()?;
            if !matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") {
                return None;
            }
            format!("http://{host}:{}", port.checked_add(1000)?)
        }
    };
    Some(WebUi { base, namespace: client.namespace })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUi {
    pub base: String,
    pub namespace: String,
}

/// Every request, in a visibility query.
pub const ALL_REQUESTS: &str = "WorkflowType = \"ProvisionWorkflow\"";
/// The requests that wait for a person.
pub const AWAITING_APPROVAL: &str = "WorkflowType = \"ProvisionWorkflow\" AND TollgateStage = \"AWAITING_APPROVAL\"";

impl WebUi {
    /// One request's page (its summary, details, history and Call Stack).
    pub fn request(&self, id: &str) -> String {
        format!("{}/namespaces/{}/workflows/{}", self.base, encode(&self.namespace), encode(id))
    }

    /// The workflows list, filtered by `query`.
    pub fn list(&self, query: &str) -> String {
        format!("{}/namespaces/{}/workflows?query={}", self.base, encode(&self.namespace), encode(query))
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_encoded() {
        let ui = WebUi { base: "http://127.0.0.1:8233".into(), namespace: "default".into() };
        assert_eq!(ui.request("req-s3-1"), "http://127.0.0.1:8233/namespaces/default/workflows/req-s3-1");
        assert_eq!(
            ui.list(AWAITING_APPROVAL),
            "http://127.0.0.1:8233/namespaces/default/workflows?query=WorkflowType%20%3D%20%22ProvisionWorkflow%22%20AND%20TollgateStage%20%3D%20%22AWAITING_APPROVAL%22"
        );
    }
}
