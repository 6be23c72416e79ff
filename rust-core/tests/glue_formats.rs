//! Avro and JSON Schema schemas from the Glue registry (moto), taken by their `DataFormat`, and
//! framed as AWS's Glue serializer frames them: `0x03`, the compression byte, the schema version
//! UUID, then the Avro binary or the JSON text (no message index), zlib-compressed or not. Dry-run
//! publishers: the framed value is what `encode` returns, nothing is produced.

mod common;

use std::io::Read;

use aws_sdk_glue::types::DataFormat;
use common::*;
use topicgate::{Publisher, Record, Status};

const AVSC: &str = r#"{"type":"record","name":"Order","namespace":"gc.v1","fields":[
    {"name":"id","type":"string"},{"name":"qty","type":"int","default":1},
    {"name":"note","type":["null","string"],"default":null}]}"#;

const JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",
    "required":["id"],"properties":{"id":{"type":"string"},"qty":{"type":"integer","minimum":1}}}"#;

/// The payload after the 18-byte header, inflated when the compression byte says zlib.
fn payload(value: &[u8], version_id: &str, compression: &str) -> Vec<u8> {
    assert_eq!(value[0], 0x03, "header version");
    assert_eq!(&value[2..18], uuid::Uuid::parse_str(version_id).unwrap().as_bytes(), "schema version id");
    match compression {
        "none" => {
            assert_eq!(value[1], 0x00);
            value[18..].to_vec()
        }
        _ => {
            assert_eq!(value[1], 0x05);
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&value[18..]).read_to_end(&mut out).unwrap();
            out
        }
    }
}

fn publisher(compression: &str) -> Publisher {
    let extra = format!(r#","dry_run":true,"value_format":"glue","glue_compression":"{compression}""#);
    Publisher::new(&glue_config(TEST_REGISTRY, &extra)).unwrap()
}

#[test]
fn avro_and_json_schemas_from_glue_are_framed_as_aws_frames_them() {
    let avro_topic = unique("GlueAvro");
    let json_topic = unique("GlueJson");
    let avro_id = glue_create_schema_as(TEST_REGISTRY, &avro_topic, AVSC, DataFormat::Avro);
    let json_id = glue_create_schema_as(TEST_REGISTRY, &json_topic, JSON_SCHEMA, DataFormat::Json);
    let schema = apache_avro::Schema::parse_str(AVSC).unwrap();
    for compression in ["none", "zlib"] {
        let p = publisher(compression);
        let rec = |topic, json| Record { topic, json, headers: &[], key: None };
        // Avro: the binary alone; decoded by apache-avro's reader to the value with its defaults.
        let value = p.encode(&rec(&avro_topic, r#"{"id":"o-1","note":"gift"}"#)).unwrap();
        let avro = payload(&value, &avro_id, compression);
        // "o-1" (len 3 → 6), qty default 1 (→ 2), union branch 1 (→ 2), "gift" (len 4 → 8).
        assert_eq!(avro, [&[6][..], b"o-1", &[2, 2, 8], b"gift"].concat());
        #[allow(deprecated)]
        let back = apache_avro::from_avro_datum(&schema, &mut &avro[..], None).unwrap();
        assert!(matches!(back, apache_avro::types::Value::Record(_)), "{back:?}");
        // JSON: the compact body; draft 7 from its `$schema`.
        let value = p.encode(&rec(&json_topic, "{ \"id\" : \"o-1\", \"qty\": 2 }")).unwrap();
        assert_eq!(payload(&value, &json_id, compression), br#"{"id":"o-1","qty":2}"#);
        // Violations are 400s naming the place, in either format.
        let e = p.encode(&rec(&avro_topic, r#"{"id":1}"#)).unwrap_err();
        assert_eq!((e.status, e.message.contains("field `id`")), (Status::BadRequest, true), "{}", e.message);
        let e = p.encode(&rec(&json_topic, r#"{"id":"o-1","qty":0}"#)).unwrap_err();
        assert_eq!((e.status, e.message.contains("at `/qty`")), (Status::BadRequest, true), "{}", e.message);
    }
}

#[test]
fn a_named_message_type_with_an_avro_schema_says_why_it_cannot_serve() {
    let topic = unique("GlueAvroNamed");
    glue_create_schema_as(TEST_REGISTRY, &topic, AVSC, DataFormat::Avro);
    let p = Publisher::new(&glue_config(TEST_REGISTRY, r#","dry_run":true,"schema":{"message_type":"gc.v1.Order"}"#))
        .unwrap();
    let e = p.encode(&Record { topic: &topic, json: r#"{"id":"x"}"#, headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::InternalError);
    assert!(e.message.contains("is Avro, which has no message types"), "{}", e.message);
}

/// `key_schema` with Glue: the key's schema is the Glue schema `key_schema.name_template` names
/// (`<topic>-key` by default), and the key is framed as the value is, with the key schema's own
/// version UUID (zlib too when `glue_compression` says so).
#[test]
fn keys_are_encoded_with_their_glue_schema_and_framed_with_its_version() {
    let topic = unique("GlueKeyed");
    let value_id = glue_create_schema_as(TEST_REGISTRY, &topic, AVSC, DataFormat::Avro);
    let key_id = glue_create_schema_as(TEST_REGISTRY, &format!("{topic}-key"), JSON_SCHEMA, DataFormat::Json);
    for compression in ["none", "zlib"] {
        let extra =
            format!(r#","dry_run":true,"value_format":"glue","glue_compression":"{compression}","key_schema":{{}}"#);
        let p = Publisher::new(&glue_config(TEST_REGISTRY, &extra)).unwrap();
        let rec = |key: &'static [u8]| Record { topic: &topic, json: r#"{"id":"o-1"}"#, headers: &[], key: Some(key) };
        let (value, key) = p.encode_with_key(&rec(br#"{ "id": "k-1", "qty": 3 }"#)).unwrap();
        assert_eq!(payload(&value, &value_id, compression), [&[6][..], b"o-1", &[2, 0]].concat());
        assert_eq!(payload(&key.unwrap(), &key_id, compression), br#"{"id":"k-1","qty":3}"#);
        let e = p.encode_with_key(&rec(br#"{"id":"k-1","qty":0}"#)).unwrap_err();
        assert_eq!(
            (e.status, e.message.starts_with("key: does not match")),
            (Status::BadRequest, true),
            "{}",
            e.message
        );
    }
}
