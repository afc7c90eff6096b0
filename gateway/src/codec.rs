//! The codec endpoint (`/codec/.../encode`, `/codec/.../decode`): Temporal's codec-server
//! protocol, so the Web UI shows decrypted payloads to the people allowed to read them. The
//! keys are the gateway's own `TOLLGATE_PAYLOAD_KEYS` (the worker's). Only the last path
//! segment decides what happens (`/codec/default/decode` works); `X-Namespace`, when sent,
//! must be the gateway's namespace. Callers authenticate with an API token or, from the Web UI
//! (which cannot send one), with the session cookie the inbox sets at sign-in (`POST
//! /session`), scoped to `/codec`. CORS answers the configured Web UI origins, with
//! credentials.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use temporalio_client::NamespacedClient as _;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tollgate_client::codec::PayloadCipher;

use crate::Gateway;
use crate::error::ApiError;

/// The cookie the inbox sets at sign-in for the Web UI's codec calls.
pub const SESSION_COOKIE: &str = "tollgate_session";

/// CORS headers for `origin` when it is one of the configured Web UI origins.
fn cors(gw: &Gateway, headers: &HeaderMap) -> Vec<(header::HeaderName, HeaderValue)> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return vec![] };
    if !gw.config.codec.cors_origins.iter().any(|o| o == origin) {
        return vec![];
    }
    let Ok(origin) = HeaderValue::from_str(origin) else { return vec![] };
    vec![
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
        (header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization,Content-Type,X-Namespace")),
        (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST,OPTIONS")),
        (header::VARY, HeaderValue::from_static("Origin")),
    ]
}

fn with_cors(gw: &Gateway, headers: &HeaderMap, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    for (name, value) in cors(gw, headers) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// `OPTIONS`: the browser's preflight; no body.
pub async fn preflight(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    with_cors(&gw, &headers, StatusCode::NO_CONTENT)
}

/// `POST .../encode` or `.../decode`.
pub async fn endpoint(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&gw, &rest, &headers, &body) {
        Ok(value) => with_cors(&gw, &headers, axum::Json(value)),
        // The protocol's answer to input it cannot use (bad JSON, a payload that does not
        // decrypt) is 400, with the gateway's usual error body.
        Err(e @ ApiError::Invalid { .. }) => with_cors(&gw, &headers, (StatusCode::BAD_REQUEST, axum::Json(e.body()))),
        Err(e) => with_cors(&gw, &headers, e),
    }
}

fn answer(gw: &Gateway, rest: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let user = reader(gw, headers)?;
    let readers = &gw.config.codec.readers;
    if !readers.is_empty() && !readers.contains(&user) {
        return Err(ApiError::Forbidden {
            code: Some("not_a_reader"),
            message: format!("{user} may not read payloads here (codec.readers)"),
        });
    }
    let Some(cipher) = &gw.cipher else {
        return Err(ApiError::NotFound(
            "payload encryption is not turned on at this gateway (TOLLGATE_PAYLOAD_KEYS)".into(),
        ));
    };
    if let Some(ns) = headers.get("x-namespace").and_then(|v| v.to_str().ok()) {
        let ours = gw.client.namespace();
        if ns != ours {
            return Err(ApiError::Forbidden {
                code: Some("wrong_namespace"),
                message: format!("this gateway reads namespace {ours}, not {ns}"),
            });
        }
    }
    let encode = match rest.rsplit('/').next() {
        Some("encode") => true,
        Some("decode") => false,
        _ => return Err(ApiError::NotFound("the codec answers .../encode and .../decode".into())),
    };
    let payloads = parse(body)?;
    let out = payloads
        .into_iter()
        .map(|p| {
            if encode {
                Ok(cipher.encrypt(&p))
            } else {
                PayloadCipher::decrypt(Some(cipher), p).map_err(|e| ApiError::invalid_body(e.to_string()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "payloads": out.iter().map(to_json).collect::<Vec<_>>() }))
}

/// Who calls: an API token, else the session cookie (only here: nowhere else does a cookie act).
fn reader(gw: &Gateway, headers: &HeaderMap) -> Result<String, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return crate::auth::identify(&gw.config, headers, None, "user");
    }
    if let Some(session) =
        gw.config.oidc.as_ref().and_then(|o| crate::oidc::session(o, headers, crate::now_ms() / 1000))
    {
        return Ok(session.user);
    }
    let token = session_token(headers).ok_or_else(|| {
        ApiError::Unauthorized("sign in to the inbox (it sets the session) or send an API token".into())
    })?;
    crate::auth::user_for_token(&gw.config, &token)
        .map(str::to_string)
        .ok_or_else(|| ApiError::Unauthorized("the session matches no user; sign in to the inbox again".into()))
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE).then(|| value.to_string())
    })
}

/// `{"payloads": [{"metadata": {"k": "<base64>"}, "data": "<base64>"}]}` (proto3 JSON).
fn parse(body: &[u8]) -> Result<Vec<Payload>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_body(format!("the body is not JSON ({e}); send {{\"payloads\": [...]}}")))?;
    let list = value.get("payloads").and_then(Value::as_array).ok_or_else(|| {
        ApiError::invalid("payloads", "payloads must be a list of {\"metadata\": {...}, \"data\": \"<base64>\"}")
    })?;
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let bytes = |v: &Value, what: &str| -> Result<Vec<u8>, ApiError> {
                match v {
                    Value::Null => Ok(vec![]),
                    Value::String(s) => STANDARD
                        .decode(s)
                        .map_err(|_| ApiError::invalid("payloads", format!("payloads[{i}].{what} is not base64"))),
                    _ => Err(ApiError::invalid("payloads", format!("payloads[{i}].{what} must be a base64 string"))),
                }
            };
            let mut metadata = std::collections::HashMap::new();
            if let Some(m) = p.get("metadata").and_then(Value::as_object) {
                for (k, v) in m {
                    metadata.insert(k.clone(), bytes(v, &format!("metadata.{k}"))?);
                }
            }
            Ok(Payload { metadata, data: bytes(p.get("data").unwrap_or(&Value::Null), "data")?, ..Default::default() })
        })
        .collect()
}

fn to_json(p: &Payload) -> Value {
    let metadata: Map<String, Value> =
        p.metadata.iter().map(|(k, v)| (k.clone(), Value::String(STANDARD.encode(v)))).collect();
    json!({ "metadata": metadata, "data": STANDARD.encode(&p.data) })
}

/// `POST /session`: the inbox's sign-in also sets the cookie the Web UI's codec calls carry.
pub async fn open_session(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = crate::auth::identify(&gw.config, &headers, None, "user")?;
    let token = crate::auth::bearer(&headers).unwrap_or_default().to_string();
    let secure = if gw.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/codec; HttpOnly; SameSite=Strict{secure}");
    let mut response = axum::Json(json!({ "user": user })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| ApiError::Unauthorized("the API token has characters a cookie cannot hold".into()))?,
    );
    Ok(response)
}

/// `DELETE /session`: sign-out clears it.
pub async fn close_session() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = format!("{SESSION_COOKIE}=; Path=/codec; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ASCII"));
    response
}
