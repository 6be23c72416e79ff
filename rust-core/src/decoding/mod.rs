//! Record bytes → JSON, the read side's decoding (issue #22): the framing is detected from the
//! bytes (`framing`), then the payload is decoded by the topic's schema in its format
//! (`protobuf`, `avro`, JSON Schema's payload is JSON text already).

pub mod avro;
pub mod framing;
pub mod protobuf;

use std::sync::Arc;

use serde_json::Value;

use crate::schema::{CompiledSchema, Format};
use framing::Payload;

/// Finds a Confluent registry's schema by its global id (the schema cache's lookup by id).
pub type ById<'a> = &'a dyn Fn(u32) -> std::result::Result<Arc<CompiledSchema>, String>;

/// Decodes a record value of a topic whose schema is `schema` (any framing `schema` can have) to
/// JSON; a Confluent-framed value of another schema id is decoded with that schema, found by
/// `by_id`. The error says why it does not decode, without the bytes.
pub fn decode_value(bytes: &[u8], schema: &CompiledSchema, by_id: ById<'_>) -> std::result::Result<Value, String> {
    match framing::payload(bytes, schema)? {
        Payload::Bytes(payload) => decode_payload(&payload, schema),
        Payload::OtherConfluentId(id) => {
            let other = by_id(id).map_err(|e| format!("value was written with Confluent schema id {id}: {e}"))?;
            match framing::payload(bytes, &other)? {
                Payload::Bytes(payload) => decode_payload(&payload, &other),
                // The registry's schema of id N has another id: its data is broken.
                Payload::OtherConfluentId(_) => Err(format!("the registry's schema of id {id} carries another id")),
            }
        }
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

    fn none(id: u32) -> std::result::Result<Arc<CompiledSchema>, String> {
        Err(format!("no schema {id} here"))
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
            assert!(decode_value(&other, &glue).unwrap_err().contains("Glue schema version"));
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
        let by_id = |id: u32| if id == 8 { Ok(eight.clone()) } else { none(id) };
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
