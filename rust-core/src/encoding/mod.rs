//! JSON bodies → record values, one module per schema format: Protobuf here (the proto3 JSON
//! mapping), Avro in `avro`, JSON Schema in `json_schema`. Errors name the field path.
//!
//! Two paths give the same result: the direct writer (`writer`) streams JSON straight into
//! Protobuf bytes for every message it has a plan for, and prost-reflect's `DynamicMessage`
//! handles the rest and decides every body the writer gives up on. Every error but a repeated key is
//! decided by prost-reflect, and its text is built by `explain` from the field path and the type
//! the schema expects there, so it depends neither on the path taken nor on a dependency's wording.

#[cfg(test)]
mod agreement_tests;
pub mod avro;
mod explain;
pub mod json_schema;
mod json_value;
mod plan;
mod writer;

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor};

use crate::error::{Error, Result};
use plan::Plan;

/// Encodes JSON bodies as one message type; build once per schema, share freely.
#[derive(Debug)]
pub struct Encoder {
    message: MessageDescriptor,
    /// `None` when the writer leaves this message to prost-reflect (proto2, well-known root).
    plan: Option<Plan>,
}

impl Encoder {
    /// Plans the direct writer for `message` (a walk over its descriptor, done once).
    pub fn new(message: MessageDescriptor) -> Encoder {
        let plan = Plan::build(&message);
        Encoder { message, plan }
    }

    /// The message type bodies are parsed into.
    pub fn message(&self) -> &MessageDescriptor {
        &self.message
    }

    /// Parses `json` as the message and returns its Protobuf encoding.
    pub fn encode(&self, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
        match json.trim_start().as_bytes().first() {
            None => return Err(Error::bad_request("body is empty; expected a JSON object")),
            Some(b'{') => {}
            Some(_) => return Err(Error::bad_request("body must be a JSON object")),
        }
        let options = DeserializeOptions::new().deny_unknown_fields(!allow_unknown_fields);
        if let Some(plan) = &self.plan {
            match writer::write(plan, json, allow_unknown_fields, &options) {
                Ok(bytes) => return Ok(bytes),
                Err(writer::Stop::Duplicate(what)) => {
                    return Err(Error::bad_request(format!("{what} appears more than once in its object")))
                }
                Err(writer::Stop::FallBack) => {}
            }
        }
        // prost-reflect keeps the last of two equal keys; refuse them here as the writer does.
        if let Some(e) = duplicate_key(json) {
            return Err(Error::bad_request(format!("body: {DUPLICATE_KEY}{}", explain::position(&e))));
        }
        self.encode_dynamic(json, allow_unknown_fields, &options)
    }

    /// `encode` through prost-reflect alone, never the direct writer: what benchmarks compare with.
    #[doc(hidden)]
    pub fn encode_via_dynamic_message(&self, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
        let options = DeserializeOptions::new().deny_unknown_fields(!allow_unknown_fields);
        self.encode_dynamic(json, allow_unknown_fields, &options)
    }

    /// prost-reflect's path: builds a `DynamicMessage`, then encodes it.
    fn encode_dynamic(&self, json: &str, allow_unknown_fields: bool, options: &DeserializeOptions) -> Result<Vec<u8>> {
        let desc = &self.message;
        // Path tracking costs more than the parse itself, so bodies are parsed without it and only a
        // failed parse is repeated with it, to name the field.
        let mut de = serde_json::Deserializer::from_str(json);
        let message = match DynamicMessage::deserialize_with_options(desc.clone(), &mut de, options) {
            Ok(message) => message,
            Err(_) => return Err(Error::bad_request(locate_error(desc, json, allow_unknown_fields, options))),
        };
        // Only text after the object is left: a syntax error ("trailing characters").
        de.end().map_err(|e| Error::bad_request(explain::after_body(&e)))?;
        Ok(message.encode_to_vec())
    }
}

/// Parses `json` as the message `desc` and returns its Protobuf encoding. Plans the message on
/// every call: keep an [`Encoder`] for repeated use.
pub fn json_to_protobuf(desc: &MessageDescriptor, json: &str, allow_unknown_fields: bool) -> Result<Vec<u8>> {
    Encoder::new(desc.clone()).encode(json, allow_unknown_fields)
}

/// The error for the first JSON object that has some key twice, if any (syntax errors are left to the
/// real parse, which words them better).
fn duplicate_key(json: &str) -> Option<serde_json::Error> {
    struct AnyValue;
    impl<'de> serde::Deserialize<'de> for AnyValue {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<AnyValue, D::Error> {
            d.deserialize_any(AnyValue)
        }
    }
    impl<'de> serde::de::Visitor<'de> for AnyValue {
        type Value = AnyValue;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<AnyValue, A::Error> {
            let mut keys = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !keys.insert(key) {
                    return Err(serde::de::Error::custom(DUPLICATE_KEY));
                }
                map.next_value::<AnyValue>()?;
            }
            Ok(AnyValue)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<AnyValue, A::Error> {
            while seq.next_element::<AnyValue>()?.is_some() {}
            Ok(AnyValue)
        }
        fn visit_bool<E>(self, _: bool) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
        fn visit_u64<E>(self, _: u64) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
        fn visit_unit<E>(self) -> std::result::Result<AnyValue, E> {
            Ok(AnyValue)
        }
    }
    match serde_json::from_str::<AnyValue>(json) {
        Err(e) if e.to_string().starts_with(DUPLICATE_KEY) => Some(e),
        _ => None,
    }
}

/// The text of a duplicate-key error on the prost-reflect path.
const DUPLICATE_KEY: &str = "a key appears more than once in one object";

/// Parses `json` again with path tracking and describes the first error.
fn locate_error(desc: &MessageDescriptor, json: &str, allow_unknown: bool, options: &DeserializeOptions) -> String {
    let mut de = serde_json::Deserializer::from_str(json);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    match DynamicMessage::deserialize_with_options(desc.clone(), tracked, options) {
        Err(e) => explain::explain(desc, json, &track.path(), &e, allow_unknown),
        Ok(_) => "body: does not match the schema".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::compile_for_test;
    use prost_reflect::Value;

    const PROTO: &str = r#"
        syntax = "proto3";
        package t;
        import "google/protobuf/timestamp.proto";
        message Event {
          string sample_message = 1;
          int64 big = 2;
          Color color = 3;
          google.protobuf.Timestamp at = 4;
          bytes blob = 5;
          Inner inner = 6;
          repeated int32 nums = 7;
          map<string, int32> counts = 8;
          double ratio = 9;
          uint32 small = 10;
        }
        message Inner { string name = 1; repeated Inner children = 2; }
        enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
    "#;

    const ANY_PROTO: &str = r#"syntax = "proto3"; package a; import "google/protobuf/any.proto";
        message A { google.protobuf.Any x = 1; }"#;

    fn event() -> MessageDescriptor {
        compile_for_test(PROTO).get_message_by_name("t.Event").unwrap()
    }

    fn encode(json: &str) -> Result<Vec<u8>> {
        json_to_protobuf(&event(), json, false)
    }

    #[test]
    fn classic_message_encodes_to_hand_computed_bytes() {
        // field 1, wire type 2 (0x0a), length 11, "hello world"
        let mut expected = vec![0x0a, 11];
        expected.extend_from_slice(b"hello world");
        assert_eq!(encode(r#"{"sample_message":"hello world"}"#).unwrap(), expected);
        // json_name works too
        assert_eq!(encode(r#"{"sampleMessage":"hello world"}"#).unwrap(), expected);
    }

    #[test]
    fn proto3_json_mapping() {
        // int64 as string and as number: field 2 varint 300 = 0x10 0xAC 0x02
        assert_eq!(encode(r#"{"big":"300"}"#).unwrap(), vec![0x10, 0xac, 0x02]);
        assert_eq!(encode(r#"{"big":300}"#).unwrap(), vec![0x10, 0xac, 0x02]);
        // enum by name: field 3 varint 1
        assert_eq!(encode(r#"{"color":"RED"}"#).unwrap(), vec![0x18, 0x01]);
        // bytes as base64: field 5 length 3 "abc"
        assert_eq!(encode(r#"{"blob":"YWJj"}"#).unwrap(), vec![0x2a, 3, b'a', b'b', b'c']);
        // Timestamp as RFC 3339: field 4 { seconds(1) = 1 }
        assert_eq!(encode(r#"{"at":"1970-01-01T00:00:01Z"}"#).unwrap(), vec![0x22, 2, 0x08, 0x01]);
        // packed repeated: field 7 length 2 [1, 2]
        assert_eq!(encode(r#"{"nums":[1,2]}"#).unwrap(), vec![0x3a, 2, 1, 2]);
        // map entry: field 8 { key(1)="a", value(2)=5 }
        assert_eq!(encode(r#"{"counts":{"a":5}}"#).unwrap(), vec![0x42, 5, 0x0a, 1, b'a', 0x10, 5]);
        // nested message: field 6 { name(1)="x" }
        assert_eq!(encode(r#"{"inner":{"name":"x"}}"#).unwrap(), vec![0x32, 3, 0x0a, 1, b'x']);
    }

    #[test]
    fn decodes_back_to_the_same_values() {
        let bytes = encode(r#"{"sample_message":"s","inner":{"children":[{"name":"c"}]},"ratio":0.5}"#).unwrap();
        let m = DynamicMessage::decode(event(), bytes.as_slice()).unwrap();
        assert_eq!(m.get_field_by_name("sample_message").unwrap().as_ref(), &Value::String("s".into()));
        assert_eq!(m.get_field_by_name("ratio").unwrap().as_ref(), &Value::F64(0.5));
    }

    #[test]
    fn mismatch_names_the_field_path_without_echoing_the_value() {
        let e = encode(r#"{"inner":{"children":[{"name":"ok"},{"name":12345}]}}"#).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("field `inner.children[1].name`"), "{}", e.message);
        assert!(!e.message.contains("12345"), "{}", e.message);
        let e = encode(r#"{"big":"not-a-number-secret"}"#).unwrap_err();
        assert!(e.message.contains("field `big`") && !e.message.contains("secret"), "{}", e.message);
        let e = encode(r#"{"sample_message":true}"#).unwrap_err();
        assert!(e.message.contains("invalid type: boolean, expected a string"), "{}", e.message);
        let e = encode(r#"{"small":-1}"#).unwrap_err();
        assert!(e.message.contains("field `small`"), "{}", e.message);
    }

    #[test]
    fn schema_mismatches_are_worded_from_the_field_path_and_the_expected_type() {
        // Built from the schema and the JSON kind found, never from a parser's text: no value, no
        // part of one, not even the code of one of its characters (a base64 parser says
        // "Invalid symbol 33, offset 2." for the `!` below).
        let cases = [
            (r#"{"blob":"ab!d"}"#, "field `blob`: invalid value: string, expected a base64-encoded string"),
            (
                r#"{"big":"12x"}"#,
                "field `big`: invalid value: string, expected a 64-bit signed integer, as a number or a decimal string",
            ),
            (
                r#"{"small":-1}"#,
                "field `small`: invalid value: integer, expected a 32-bit unsigned integer, as a number or a decimal string",
            ),
            (
                r#"{"nums":[1,2.5]}"#,
                "field `nums[1]`: invalid value: floating point, expected a 32-bit signed integer, as a number or a decimal string",
            ),
            (
                r#"{"ratio":"often"}"#,
                "field `ratio`: invalid value: string, expected a 64-bit floating point number, as a number, a numeric \
                 string, `NaN`, `Infinity` or `-Infinity`",
            ),
            (
                r#"{"at":"2024-13-01T00:00:00Z"}"#,
                "field `at`: invalid value: string, expected an RFC 3339 timestamp string (google.protobuf.Timestamp)",
            ),
            (
                r#"{"counts":{"secret":true}}"#,
                "field `counts[<key>]`: invalid type: boolean, expected a 32-bit signed integer, as a number or a decimal string",
            ),
            (r#"{"inner":[]}"#, "field `inner`: invalid type: sequence, expected an object (message `t.Inner`)"),
            (r#"{"inner":{"children":{}}}"#, "field `inner.children`: invalid type: map, expected a list (repeated t.Inner)"),
            (r#"{"color":"PURPLE"}"#, "field `color`: expected a value of enum `t.Color`, found an unrecognized enum value"),
            (r#"{"color":[1]}"#, "field `color`: invalid type: sequence, expected a value name or number of enum `t.Color`"),
            // A JSON name is shown as the field's name.
            (r#"{"sampleMessage":1}"#, "field `sample_message`: invalid type: integer, expected a string"),
        ];
        for (json, expected) in cases {
            let e = encode(json).unwrap_err();
            assert_eq!(e.status, crate::Status::BadRequest, "{json}");
            let (message, position) = e.message.rsplit_once(" (line ").expect("a position");
            assert_eq!(message, expected, "{json}");
            assert!(position.starts_with("1, column "), "{}", e.message);
        }
    }

    #[test]
    fn unknown_fields_rejected_unless_allowed() {
        let e = encode(r#"{"sample_message":"x","extra":1}"#).unwrap_err();
        assert!(e.message.contains("unrecognized field name 'extra'"), "{}", e.message);
        let e = encode(r#"{"inner":{"nope":1}}"#).unwrap_err();
        assert!(e.message.contains("inner") && e.message.contains("'nope'"), "{}", e.message);
        let ok = json_to_protobuf(&event(), r#"{"sample_message":"x","extra":{"deep":[1]}}"#, true).unwrap();
        assert_eq!(ok, vec![0x0a, 1, b'x']);
    }

    #[test]
    fn duplicate_fields_are_rejected_with_their_path() {
        let e = encode(r#"{"sample_message":"a","sample_message":"b"}"#).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert_eq!(e.message, "field `sample_message`: appears more than once in its object");
        // The JSON name and the proto name are the same field.
        let e = encode(r#"{"sampleMessage":"a","sample_message":"a"}"#).unwrap_err();
        assert!(e.message.starts_with("field `sample_message`: appears more than once"), "{}", e.message);
        let e = encode(r#"{"inner":{"children":[{"name":"x"},{"name":"y","name":"z"}]}}"#).unwrap_err();
        assert!(e.message.starts_with("field `inner.children[1].name`: appears more than once"), "{}", e.message);
        // Also when another value sends the body to prost-reflect first (1.0 for an integer).
        let e = encode(r#"{"big":1.0,"sample_message":"a","sample_message":"b"}"#).unwrap_err();
        assert!(e.message.starts_with("body: a key appears more than once in one object (line 1"), "{}", e.message);
        // A map key twice: named by its field, the key itself is payload and not echoed.
        let e = encode(r#"{"counts":{"secret":1,"secret":2}}"#).unwrap_err();
        assert_eq!(e.message, "field `counts`: a map key appears more than once in its object");
        // The same key in two different objects is fine.
        encode(r#"{"inner":{"name":"a","children":[{"name":"b"}]}}"#).unwrap();
    }

    #[test]
    fn unknown_enum_name_is_rejected() {
        let e = encode(r#"{"color":"PURPLE"}"#).unwrap_err();
        assert!(e.message.contains("field `color`"), "{}", e.message);
        assert!(e.message.contains("unrecognized enum value (line"), "{}", e.message);
        assert!(!e.message.contains("PURPLE"), "the value is echoed: {}", e.message);
        let any =
            |json| json_to_protobuf(&compile_for_test(ANY_PROTO).get_message_by_name("a.A").unwrap(), json, false);
        let e = any(r#"{"x":{"@type":"no-slash-secret"}}"#).unwrap_err();
        assert!(e.message.contains("unsupported `@type` URL: missing"), "{}", e.message);
        assert!(!e.message.contains("secret"), "the value is echoed: {}", e.message);
        let e = any(r#"{"x":{"@type":"x/secret.Name"}}"#).unwrap_err();
        assert!(e.message.contains("the message `@type` names was not found"), "{}", e.message);
        assert!(!e.message.contains("secret"), "the value is echoed: {}", e.message);
    }

    #[test]
    fn malformed_bodies() {
        assert!(encode("").unwrap_err().message.contains("empty"));
        assert!(encode("  ").unwrap_err().message.contains("empty"));
        assert!(encode("[1]").unwrap_err().message.contains("JSON object"));
        assert!(encode("\"x\"").unwrap_err().message.contains("JSON object"));
        let e = encode(r#"{"sample_message":"x"} trailing"#).unwrap_err();
        assert!(e.message.starts_with("body: trailing characters"), "{}", e.message);
        let e = encode(r#"{"sample_message":"x""#).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        let deep = format!("{}{}", r#"{"inner":"#.repeat(5000), "}".repeat(5000));
        let e = encode(&deep).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
    }
}
