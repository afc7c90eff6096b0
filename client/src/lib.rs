//! `tollgate-client`: everything a program needs to talk to Tollgate through Temporal, and
//! nothing of the worker. The CLI, the gateway (and later an MCP server) use it: connecting
//! with the SDK's envconfig, starting and messaging each workflow type, turning an update's
//! failure into a [`Refusal`](tollgate_workflows::refusal::Refusal) for any workflow, reading
//! progress, rendering it once for every JSON consumer, and the signed-link format the worker
//! signs and the gateway verifies.

pub mod approvals;
pub mod audits;
pub mod codec;
pub mod error;
pub mod ledger;
pub mod links;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod namespace;
pub mod otel;
pub mod render;
pub mod requests;
pub mod slack;
pub mod tokens;
pub mod updates;
pub mod webui;

pub use error::ClientError;
pub use temporalio_client::{Client, GrpcCompression};

use temporalio_client::{ClientOptions, Connection, envconfig::LoadClientConfigProfileOptions};

/// Connects with the SDK's envconfig (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, profiles), the
/// payload codec (`TOLLGATE_PAYLOAD_KEYS`; see [`codec`]) and tracing when it is on ([`otel`]).
pub async fn connect() -> Result<Client, ClientError> {
    connect_with(GrpcCompression::default()).await
}

/// [`connect`], with the calls compressed as `compression` says (the worker reads it from
/// `worker.grpc_compression`; the SDK's default is gzip).
pub async fn connect_with(compression: GrpcCompression) -> Result<Client, ClientError> {
    let (mut conn_opts, client_opts) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
        .map_err(|e| {
            ClientError::Failed(format!(
                "reading Temporal connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, profile): {e:?}"
            ))
        })?;
    let client_opts = configure(client_opts)?;
    conn_opts.grpc_compression = compression;
    let target = conn_opts.target.to_string();
    let connection = Connection::connect(conn_opts).await.map_err(|e| {
        ClientError::Failed(format!(
            "cannot reach Temporal at {target} ({}): start a server (tollgate dev) or point TEMPORAL_ADDRESS at one",
            error::root_cause(&e)
        ))
    })?;
    Client::new(connection, client_opts).map_err(|e| ClientError::Failed(format!("connecting to Temporal: {e}")))
}

/// `options` with the payload codec (`TOLLGATE_PAYLOAD_KEYS`) and, when tracing is on
/// ([`otel`]), the SDK's tracing plugin: every client that talks to Tollgate's workflows, and
/// the worker built from it, reads, writes and traces the same way.
pub fn configure(options: temporalio_client::ClientOptions) -> Result<temporalio_client::ClientOptions, ClientError> {
    let cipher = codec::PayloadCipher::from_env().map_err(|e| ClientError::Refused(e.to_string()))?;
    // Even without keys: an encrypted payload then fails with the key id it needs, not with
    // the JSON converter's "wrong encoding".
    let converter = temporalio_common::data_converters::DataConverter::new(
        Default::default(),
        temporalio_common::data_converters::DefaultFailureConverter::default(),
        codec::EncryptionCodec { cipher },
    );
    let mut builder = temporalio_client::ClientOptions::new(options.namespace.clone())
        .data_converter(converter)
        .client_interceptors(options.client_interceptors.clone());
    if let Some(plugin) = otel::plugin() {
        builder = builder.plugin(plugin);
    }
    Ok(builder.build())
}
