//! Message payloads that can never poison a request.
//!
//! A signal whose payload does not decode fails the workflow task on every attempt, forever,
//! if the handler's input type is decoded by the SDK. `Incoming<T>` takes over decoding: it
//! accepts any payloads (none, several, not JSON, wrong JSON type, unknown fields, oversized)
//! and holds either the decoded message or a `malformed` refusal that names the field and the
//! fix. The handler then records the refusal (signal) or the validator returns it (update).
//!
//! The SDK's default payload converter tries a type's own `from_payloads` before serde, which
//! is what lets this type see the raw payloads.

use std::collections::BTreeMap;

use serde_json::Value;
use temporalio_common::data_converters::{
    PayloadConversionError, SerializationContext, TemporalDeserializable, TemporalSerializable,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tollgate_proto::{ApprovalDecision, CancelCommand, Decision, LifecycleCommand};

use crate::refusal::{Code, Refusal};

/// Payloads larger than this are refused before they are parsed.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest user name accepted.
pub const MAX_USER_CHARS: usize = 128;
/// Longest comment or reason accepted.
pub const MAX_TEXT_CHARS: usize = 4096;

/// One accepted field of a message: all of Tollgate's message fields are strings.
pub struct Field {
    pub name: &'static str,
    pub required: bool,
    pub max_chars: usize,
}

/// A message Tollgate accepts through a signal or update.
pub trait Message: Sized + Clone + 'static {
    /// What people should send, shown in refusals: `{"user": "carol", ...}`.
    const EXAMPLE: &'static str;
    const FIELDS: &'static [Field];
    fn from_fields(fields: &BTreeMap<&'static str, String>) -> Self;
    fn to_fields(&self) -> Vec<(&'static str, String)>;
}

/// A decoded message, or why it could not be decoded.
#[derive(Debug, Clone)]
pub struct Incoming<T> {
    decoded: Result<T, Refusal>,
}

impl<T: Message> Incoming<T> {
    pub fn new(message: T) -> Self {
        Self { decoded: Ok(message) }
    }

    /// The message, or the `malformed` refusal.
    pub fn get(&self) -> Result<&T, Refusal> {
        self.decoded.as_ref().map_err(Clone::clone)
    }

    pub fn into_result(self) -> Result<T, Refusal> {
        self.decoded
    }

    /// Decodes raw payloads; never fails.
    pub fn decode(payloads: &[Payload]) -> Self {
        Self { decoded: decode::<T>(payloads) }
    }
}

impl<T: Message> From<T> for Incoming<T> {
    fn from(message: T) -> Self {
        Self::new(message)
    }
}

fn malformed(why: String, example: &str) -> Refusal {
    Refusal::new(Code::Malformed, format!("malformed payload: {why}; send a JSON object like {example}"))
}

fn decode<T: Message>(payloads: &[Payload]) -> Result<T, Refusal> {
    let bad = |why: String| malformed(why, T::EXAMPLE);
    let payload = match payloads {
        [] => return Err(bad("it is empty".into())),
        [one] => one,
        many => return Err(bad(format!("expected one argument, got {}", many.len()))),
    };
    if payload.data.len() > MAX_PAYLOAD_BYTES {
        return Err(bad(format!("it is {} bytes, more than the {MAX_PAYLOAD_BYTES} accepted", payload.data.len())));
    }
    let encoding = payload.metadata.get("encoding").map(|e| String::from_utf8_lossy(e).to_string()).unwrap_or_default();
    match encoding.as_str() {
        "json/plain" | "json/protobuf" => {}
        "binary/null" => return Err(bad("it is null".into())),
        other => return Err(bad(format!("it is not JSON (encoding '{}')", preview(other)))),
    }
    let value: Value = serde_json::from_slice(&payload.data)
        .map_err(|e| bad(format!("it is not valid JSON ({})", preview(&e.to_string()))))?;
    let object = match value {
        Value::Object(map) => map,
        other => {
            return Err(bad(format!(
                "expected a JSON object, got {} {}",
                json_type(&other),
                preview(&other.to_string())
            )));
        }
    };
    let mut fields = BTreeMap::new();
    for (key, value) in object {
        let Some(field) = T::FIELDS.iter().find(|f| f.name == key) else {
            let allowed: Vec<&str> = T::FIELDS.iter().map(|f| f.name).collect();
            return Err(bad(format!("unknown field '{}' (allowed: {})", preview(&key), allowed.join(", "))));
        };
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            other => return Err(bad(format!("field '{}' must be a string, got {}", field.name, json_type(&other)))),
        };
        let chars = text.chars().count();
        if chars > field.max_chars {
            return Err(bad(format!(
                "field '{}' is {chars} characters, more than the {} accepted",
                field.name, field.max_chars
            )));
        }
        fields.insert(field.name, text.trim().to_string());
    }
    for field in T::FIELDS.iter().filter(|f| f.required) {
        if fields.get(field.name).is_none_or(|v| v.is_empty()) {
            return Err(bad(format!("field '{}' is missing or empty", field.name)));
        }
    }
    Ok(T::from_fields(&fields))
}

/// "a string", "an object", ...: how refusals name a JSON value's type.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 40 characters of something a sender wrote, so a refusal never carries a huge input.
fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

impl<T: Message> TemporalDeserializable for Incoming<T> {
    fn from_payload(_: &SerializationContext<'_>, payload: Payload) -> Result<Self, PayloadConversionError> {
        Ok(Self::decode(std::slice::from_ref(&payload)))
    }

    fn from_payloads(_: &SerializationContext<'_>, payloads: Vec<Payload>) -> Result<Self, PayloadConversionError> {
        Ok(Self::decode(&payloads))
    }
}

impl<T: Message> TemporalSerializable for Incoming<T> {
    fn to_payload(&self, _: &SerializationContext<'_>) -> Result<Payload, PayloadConversionError> {
        let message = self.decoded.as_ref().map_err(|e| PayloadConversionError::EncodingError(e.clone().into()))?;
        let object: serde_json::Map<String, Value> = message
            .to_fields()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        let data = serde_json::to_vec(&object).map_err(|e| PayloadConversionError::EncodingError(e.into()))?;
        Ok(Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into_iter().collect(),
            data,
            external_payloads: vec![],
        })
    }
}

const USER: Field = Field { name: "user", required: true, max_chars: MAX_USER_CHARS };
const COMMENT: Field = Field { name: "comment", required: false, max_chars: MAX_TEXT_CHARS };
/// Set by the gateway for a message that came through a signed one-click link.
const LINK_ID: Field = Field { name: "link_id", required: false, max_chars: 64 };

impl Message for Decision {
    const EXAMPLE: &'static str = r#"{"user": "carol", "comment": "looks fine"}"#;
    /// `teams` (comma-separated) is set by the gateway for a person signed in through an
    /// identity provider: the teams it vouches for.
    const FIELDS: &'static [Field] = &[
        USER,
        COMMENT,
        Field { name: "plan_digest", required: false, max_chars: 100 },
        LINK_ID,
        Field { name: "teams", required: false, max_chars: 1024 },
    ];

    fn from_fields(f: &BTreeMap<&'static str, String>) -> Self {
        let teams = f.get("teams").map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from));
        Decision {
            user: f.get("user").cloned().unwrap_or_default(),
            comment: f.get("comment").cloned().unwrap_or_default(),
            plan_digest: f.get("plan_digest").cloned().unwrap_or_default(),
            link_id: f.get("link_id").cloned().unwrap_or_default(),
            teams: teams.map(Iterator::collect).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("user", self.user.clone()),
            ("comment", self.comment.clone()),
            ("plan_digest", self.plan_digest.clone()),
            ("link_id", self.link_id.clone()),
            ("teams", self.teams.join(",")),
        ]
    }
}

impl Message for LifecycleCommand {
    const EXAMPLE: &'static str = r#"{"user": "alice"}"#;
    /// `extension` (keep only): how much longer, e.g. "3d"; checked by the keep.
    const FIELDS: &'static [Field] =
        &[USER, COMMENT, LINK_ID, Field { name: "extension", required: false, max_chars: 32 }];

    fn from_fields(f: &BTreeMap<&'static str, String>) -> Self {
        LifecycleCommand {
            user: f.get("user").cloned().unwrap_or_default(),
            comment: f.get("comment").cloned().unwrap_or_default(),
            link_id: f.get("link_id").cloned().unwrap_or_default(),
            extension: f.get("extension").cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("user", self.user.clone()),
            ("comment", self.comment.clone()),
            ("link_id", self.link_id.clone()),
            ("extension", self.extension.clone()),
        ]
    }
}

impl Message for CancelCommand {
    const EXAMPLE: &'static str = r#"{"user": "alice", "reason": "not needed any more"}"#;
    const FIELDS: &'static [Field] = &[USER, Field { name: "reason", required: false, max_chars: MAX_TEXT_CHARS }];

    fn from_fields(f: &BTreeMap<&'static str, String>) -> Self {
        CancelCommand {
            user: f.get("user").cloned().unwrap_or_default(),
            reason: f.get("reason").cloned().unwrap_or_default(),
        }
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![("user", self.user.clone()), ("reason", self.reason.clone())]
    }
}

impl Message for ApprovalDecision {
    const EXAMPLE: &'static str = r#"{"decision": "approve", "reviewed_by": "carol", "comment": "go ahead"}"#;
    const FIELDS: &'static [Field] = &[
        Field { name: "decision", required: true, max_chars: 16 },
        Field { name: "reviewed_by", required: true, max_chars: MAX_USER_CHARS },
        COMMENT,
    ];

    fn from_fields(f: &BTreeMap<&'static str, String>) -> Self {
        ApprovalDecision {
            decision: f.get("decision").cloned().unwrap_or_default(),
            reviewed_by: f.get("reviewed_by").cloned().unwrap_or_default(),
            comment: f.get("comment").cloned().unwrap_or_default(),
        }
    }

    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("decision", self.decision.clone()),
            ("reviewed_by", self.reviewed_by.clone()),
            ("comment", self.comment.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(encoding: &str, data: &[u8]) -> Payload {
        Payload {
            metadata: [("encoding".to_string(), encoding.as_bytes().to_vec())].into_iter().collect(),
            data: data.to_vec(),
            external_payloads: vec![],
        }
    }

    fn json(data: &str) -> Vec<Payload> {
        vec![payload("json/plain", data.as_bytes())]
    }

    fn refusal(payloads: &[Payload]) -> String {
        let r = Incoming::<Decision>::decode(payloads).into_result().unwrap_err();
        assert_eq!(r.code, Code::Malformed);
        r.message
    }

    #[test]
    fn a_good_decision_decodes_and_is_trimmed() {
        let d = Incoming::<Decision>::decode(&json(r#"{"user": " carol ", "comment": "ok", "plan_digest": null}"#))
            .into_result()
            .unwrap();
        assert_eq!((d.user.as_str(), d.comment.as_str(), d.plan_digest.as_str()), ("carol", "ok", ""));
    }

    #[test]
    fn every_bad_shape_is_refused_with_the_field_and_the_fix() {
        let fix = r#"; send a JSON object like {"user": "carol", "comment": "looks fine"}"#;
        assert_eq!(
            refusal(&json(r#""carol""#)),
            format!(r#"malformed payload: expected a JSON object, got a string "carol"{fix}"#)
        );
        assert_eq!(refusal(&[]), format!("malformed payload: it is empty{fix}"));
        assert_eq!(refusal(&[payload("binary/null", b"")]), format!("malformed payload: it is null{fix}"));
        assert_eq!(
            refusal(&[payload("binary/plain", b"\x00\x01")]),
            format!("malformed payload: it is not JSON (encoding 'binary/plain'){fix}")
        );
        assert!(refusal(&json("{not json")).starts_with("malformed payload: it is not valid JSON ("));
        assert_eq!(refusal(&json("{}")), format!("malformed payload: field 'user' is missing or empty{fix}"));
        assert_eq!(
            refusal(&json(r#"{"user": "carol", "role": "admin"}"#)),
            format!(
                "malformed payload: unknown field 'role' (allowed: user, comment, plan_digest, link_id, teams){fix}"
            )
        );
        assert_eq!(
            refusal(&json(r#"{"user": 7}"#)),
            format!("malformed payload: field 'user' must be a string, got a number{fix}")
        );
        assert_eq!(
            refusal(&[json("{}")[0].clone(), json("{}")[0].clone()]),
            format!("malformed payload: expected one argument, got 2{fix}")
        );
    }

    #[test]
    fn oversized_input_is_refused_before_it_can_bloat_history() {
        let long_user = format!(r#"{{"user": "{}"}}"#, "u".repeat(MAX_USER_CHARS + 1));
        assert!(
            refusal(&json(&long_user))
                .starts_with("malformed payload: field 'user' is 129 characters, more than the 128")
        );
        let huge = format!(r#"{{"user": "carol", "comment": "{}"}}"#, "x".repeat(1 << 20));
        let why = refusal(&json(&huge));
        assert!(why.starts_with("malformed payload: it is 1048"), "{why}");
        assert!(why.len() < 200, "the refusal does not carry the input");
    }

    #[test]
    fn encodes_what_it_decodes() {
        let d = Decision { user: "carol".into(), comment: "fine".into(), ..Default::default() };
        let ctx_data = temporalio_common::data_converters::SerializationContextData::None;
        let converter = temporalio_common::data_converters::PayloadConverter::default();
        let ctx = SerializationContext::new(&ctx_data, &converter);
        let p = Incoming::new(d.clone()).to_payload(&ctx).unwrap();
        assert_eq!(String::from_utf8(p.data.clone()).unwrap(), r#"{"comment":"fine","user":"carol"}"#);
        assert_eq!(Incoming::<Decision>::decode(&[p]).into_result().unwrap(), d);
    }
}
