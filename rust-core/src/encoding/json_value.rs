//! A body parsed into a `serde_json::Value` for the Avro and JSON Schema formats: a key given twice in
//! one object is refused (serde_json would silently keep the last), and syntax errors are worded with
//! serde_json's fixed texts only, never the body. Nesting is bounded by serde_json's recursion limit
//! (128), the same limit as the Protobuf path.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::explain;
use crate::error::{Error, Result};

/// Parses `json` as one JSON value; `400` on a syntax error, a repeated key or trailing text.
pub fn parse(json: &str) -> Result<Value> {
    if json.trim_start().is_empty() {
        return Err(Error::bad_request("body is empty; expected a JSON value"));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let value = Strict.deserialize(&mut de).map_err(reject)?;
    de.end().map_err(reject)?;
    Ok(value)
}

/// The `400` for a parse error, positioned; a repeated key is the only non-syntax error.
fn reject(e: serde_json::Error) -> Error {
    let reason = match e.classify() {
        serde_json::error::Category::Data => super::DUPLICATE_KEY.to_owned(),
        _ => explain::syntax_reason(&e),
    };
    Error::bad_request(format!("body: {reason}{}", explain::position(&e)))
}

/// Builds a `Value` like serde_json's own, refusing a repeated key.
pub(super) struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        // serde_json never hands a non-finite number; `Null` would only hide a bug.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom(super::DUPLICATE_KEY));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_errors_name_no_value() {
        assert_eq!(parse(r#" {"a":[1,"x",null,true,1.5]} "#).unwrap()["a"][1], "x");
        let e = parse(r#"{"a":"secret","a":"other"}"#).unwrap_err();
        assert_eq!(e.message, "body: a key appears more than once in one object (line 1, column 26)");
        let e = parse(r#"{"a":"secret""#).unwrap_err();
        assert!(e.message.starts_with("body: EOF while parsing an object"), "{}", e.message);
        assert!(!parse(r#"{"a":1} x"#).unwrap_err().message.contains('x'));
        assert_eq!(parse("  ").unwrap_err().status, crate::Status::BadRequest);
        let objects = |n: usize| r#"{"a":"#.repeat(n) + "1" + &"}".repeat(n);

        parse(&objects(127)).unwrap();

        assert!(parse(&objects(200)).unwrap_err().message.contains("recursion limit exceeded"));

        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).unwrap_err().message.contains("recursion limit exceeded"));
    }
}
