//! Terraform values on the wire (msgpack, or JSON in a few calls) as the sandbox schema's
//! `Val`: numbers keep their exact kind, and msgpack's extension type 0 is "unknown".

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use tollgate_engine::sandbox::schema::Val;

/// A `Val` that (de)serializes the way Terraform encodes dynamic values.
#[derive(Debug, Clone, PartialEq)]
pub struct Wire(pub Val);

/// rmp-serde writes a newtype struct with this name as a msgpack extension.
const EXT: &str = "_ExtStruct";

impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Val::Null => s.serialize_unit(),
            Val::Unknown => s.serialize_newtype_struct(EXT, &(0i8, serde_bytes::ByteBuf::new())),
            Val::Bool(b) => s.serialize_bool(*b),
            Val::Number(n) => {
                if let Some(i) = n.as_i64() {
                    s.serialize_i64(i)
                } else if let Some(u) = n.as_u64() {
                    s.serialize_u64(u)
                } else {
                    s.serialize_f64(n.as_f64().unwrap_or_default())
                }
            }
            Val::String(text) => s.serialize_str(text),
            Val::List(items) | Val::Set(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Wire(item.clone()))?;
                }
                seq.end()
            }
            Val::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Wire(v.clone()))?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WireVisitor).map(Wire)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Terraform value")
    }
    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }
    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_any(WireVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(Val::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(Val::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Val, E> {
        Ok(Val::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val, E> {
        serde_json::Number::from_f64(v).map(Val::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(Val::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(Val::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::new();
        while let Some(Wire(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Val::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, Wire(v))) = map.next_entry::<String, Wire>()? {
            out.insert(k, v);
        }
        Ok(Val::Map(out))
    }
    /// Terraform's only extension is "unknown".
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        de::IgnoredAny::deserialize(d)?;
        Ok(Val::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_round_trip_keeps_unknowns_and_numbers() {
        let v = Val::Map(BTreeMap::from([
            ("id".into(), Val::Unknown),
            ("port".into(), Val::Number(5432.into())),
            ("ratio".into(), Val::Number(serde_json::Number::from_f64(0.5).unwrap())),
            ("tags".into(), Val::Map(BTreeMap::from([("Owner".into(), Val::String("alice".into()))]))),
            ("ids".into(), Val::List(vec![Val::Null, Val::Bool(true)])),
        ]));
        // tf-provider encodes with rmp_serde::to_vec_named and decodes with from_slice.
        let bytes = rmp_serde::to_vec_named(&Wire(v.clone())).unwrap();
        let Wire(back) = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, v);
    }
}
