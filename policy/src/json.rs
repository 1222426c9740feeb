//! Reading the document as JSON, refusing duplicate object keys.
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"Effect": "Deny",
//! "Effect": "Allow"}` would silently allow: a reader of the document and the evaluator
//! could disagree. Policies with a repeated key are refused instead. Nesting stays
//! bounded by serde_json's recursion limit (128 levels).

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::clip;

/// Parses `doc` as one JSON value; duplicate keys in any object are an error.
pub(crate) fn from_slice(doc: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(doc).map(|s| s.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key '{}'", clip(&key))));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_as_serde_json() {
        let doc = br#"{"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":{}},"d":18446744073709551615}"#;
        let plain: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(from_slice(doc).unwrap(), plain);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = from_slice(br#"{"Effect":"Deny","Effect":"Allow"}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate key 'Effect'"), "{e}");
        assert!(from_slice(br#"{"a":{"k":1,"k":2}}"#).is_err());
        assert!(from_slice(br#"[{"k":1},{"k":2}]"#).is_ok());
        // Keys equal after unescaping are the same key.
        assert!(from_slice(br#"{"k":1,"\u006b":2}"#).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(from_slice(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(from_slice(ok.as_bytes()).is_ok());
    }
}
