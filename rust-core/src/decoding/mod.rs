//! Record bytes → JSON, the read side's decoding (issue #22): the framing is detected from the
//! bytes (`framing`), then the payload is decoded by the topic's schema in its format
//! (`protobuf`, `avro`, JSON Schema's payload is JSON text already).

pub mod avro;
pub mod framing;
pub mod protobuf;

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::schema::{CompiledSchema, Format};
use framing::Payload;

/// A schema a framed record names that is not the topic's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Other {
    /// A Confluent registry's global schema id.
    ConfluentId(u32),
    /// A Glue schema version's UUID.
    GlueVersion(Uuid),
}

/// Finds the schema of another Confluent id or Glue version (the schema cache's lookups).
pub type ById<'a> = &'a dyn Fn(Other) -> std::result::Result<Arc<CompiledSchema>, String>;

/// Decodes a record value of a topic whose schema is `schema` (any framing `schema` can have) to
/// JSON; a value framed with another Confluent schema id or Glue schema version is decoded with
/// that schema, found by `by_id`. The error says why it does not decode, without the bytes.
pub fn decode_value(bytes: &[u8], schema: &CompiledSchema, by_id: ById<'_>) -> std::result::Result<Value, String> {
    let (other, what) = match framing::payload(bytes, schema)? {
        Payload::Bytes(payload) => return decode_payload(&payload, schema),
        Payload::OtherConfluentId(id) => (Other::ConfluentId(id), format!("Confluent schema id {id}")),
        Payload::OtherGlueVersion(v) => (Other::GlueVersion(v), format!("Glue schema version {v}")),
    };
    let found = by_id(other).map_err(|e| format!("value was written with {what}: {e}"))?;
    match framing::payload(bytes, &found)? {
        Payload::Bytes(payload) => decode_payload(&payload, &found),
        // The registry's schema of id N (version V) names another: its data is broken.
        _ => Err(format!("the registry's schema of {what} carries another id")),
    }
}

/// Decodes an unframed payload in `schema`'s format.
fn decode_payload(payload: &[u8], schema: &CompiledSchema) -> std::result::Result<Value, String> {
    match &schema.format {
        Format::Protobuf { encoder, .. } => protobuf::to_json(encoder.message(), payload),
        Format::Avro(avro) => avro::to_json(avro, payload),
        Format::JsonSchema(_) => serde_json::from_slice(payload).map_err(|e| format!("value is not JSON text: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GlueCompression, MessageType};
    use crate::registry::{SchemaFormat, SchemaText};
    use crate::wire::Framing;

    fn none(other: Other) -> std::result::Result<Arc<CompiledSchema>, String> {
        match other {
            Other::ConfluentId(id) => Err(format!("no schema {id} here")),
            Other::GlueVersion(v) => Err(format!("no version {v} here")),
        }
    }

    fn decode_value(bytes: &[u8], schema: &CompiledSchema) -> std::result::Result<Value, String> {
        super::decode_value(bytes, schema, &none)
    }

    const PROTO: &str = "syntax = \"proto3\"; message A { string s = 1; int64 n = 2; } message B { bool b = 1; }";

    fn compiled(format: SchemaFormat, definition: &str, version: Option<&str>, id: Option<u32>) -> CompiledSchema {
        let text = SchemaText {
            file_name: "t".into(),
            definition: definition.into(),
            version_id: version.map(|v| v.parse().unwrap()),
            version_number: None,
            import_dir: None,
            schema_id: id,
            references: Default::default(),
            format,
        };
        crate::schema::compile(&text, &MessageType::First).unwrap()
    }

    #[test]
    fn every_framing_decodes_to_the_json_encoded() {
        const V: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let body = r#"{"s":"x","n":"42"}"#;
        let expected = serde_json::json!({"s": "x", "n": "42"});
        let raw = compiled(SchemaFormat::Protobuf, PROTO, None, None);
        assert_eq!(decode_value(&raw.encode(body, false).unwrap(), &raw).unwrap(), expected);

        let glue = compiled(SchemaFormat::Protobuf, PROTO, Some(V), None);
        for compression in [GlueCompression::None, GlueCompression::Zlib] {
            let f = Framing::Glue {
                schema_version_id: glue.version_id.unwrap(),
                message_index: glue.message_index(),
                compression,
            };
            let framed = f.frame(glue.encode(body, false).unwrap());
            assert_eq!(decode_value(&framed, &glue).unwrap(), expected);
            let mut other = framed.clone();
            other[5] ^= 1;
            let other_version = uuid::Uuid::from_slice(&other[2..18]).unwrap();
            let err = decode_value(&other, &glue).unwrap_err();
            assert!(err.contains(&format!("Glue schema version {other_version}")), "{err}");
            // Another version is decoded with that version's schema, found by the lookup (here a
            // schema whose field 1 is named otherwise, so the JSON tells which one decoded).
            let renamed = PROTO.replace("string s = 1", "string t = 1");
            let found = Arc::new(compiled(SchemaFormat::Protobuf, &renamed, Some(&other_version.to_string()), None));
            let by_version =
                |o: Other| if o == Other::GlueVersion(other_version) { Ok(found.clone()) } else { none(o) };
            let got = super::decode_value(&other, &glue, &by_version).unwrap();
            assert_eq!(got, serde_json::json!({"t": "x", "n": "42"}));
        }

        let conf = compiled(SchemaFormat::Protobuf, PROTO, None, Some(7));
        let framed = Framing::Confluent { prefix: conf.confluent_prefix.as_ref().unwrap() }
            .frame(conf.encode(body, false).unwrap());
        assert_eq!(decode_value(&framed, &conf).unwrap(), expected);
        let mut other = framed.clone();
        other[4] = 8;
        let err = decode_value(&other, &conf).unwrap_err();
        assert!(err.contains("schema id 8") && err.contains("no schema 8 here"), "{err}");
        // Another id is decoded with that id's schema, found by the lookup.
        let eight = Arc::new(compiled(SchemaFormat::Protobuf, PROTO, None, Some(8)));
        let by_id = |o: Other| if o == Other::ConfluentId(8) { Ok(eight.clone()) } else { none(o) };
        assert_eq!(super::decode_value(&other, &conf, &by_id).unwrap(), expected);

        let json = compiled(
            SchemaFormat::JsonSchema { default_draft: jsonschema::Draft::Draft7 },
            r#"{"type":"object"}"#,
            None,
            Some(3),
        );
        let framed =
            Framing::Confluent { prefix: json.confluent_prefix.as_ref().unwrap() }.frame(b"{\"a\":1}".to_vec());
        assert_eq!(decode_value(&framed, &json).unwrap(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn bytes_of_another_format_are_an_error_not_a_panic() {
        let raw = compiled(SchemaFormat::Protobuf, PROTO, None, None);
        assert!(decode_value(b"{\"not\":\"protobuf\"}", &raw).is_err());
        let json = compiled(
            SchemaFormat::JsonSchema { default_draft: jsonschema::Draft::Draft7 },
            r#"{"type":"object"}"#,
            None,
            None,
        );
        assert!(decode_value(&[0xff, 0x01], &json).unwrap_err().contains("not JSON"));
    }
}
