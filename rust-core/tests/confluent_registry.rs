//! The Confluent-compatible registry client against a real registry (the test harness's Apicurio
//! Registry, `make registry-up`, at SCHEMA_REGISTRY_URL): subjects and versions, latest and pinned,
//! references resolved transitively, schema types, and the errors of missing subjects and versions.

mod common;

use common::*;
use serde_json::json;
use topicgate::error::Status;
use topicgate::registry::confluent::{Auth, ConfluentRegistry, SchemaType, Version};
use topicgate::{Publisher, Record};

fn url() -> String {
    env("SCHEMA_REGISTRY_URL")
}

/// Registers `schema` under `subject` through the registry's own REST API; returns its global id.
/// One at a time: Apicurio's in-memory store answers concurrent first registrations with 500
/// ("Timeout trying to lock table").
fn register(subject: &str, schema_type: &str, schema: &str, references: serde_json::Value) -> u32 {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let body = json!({"schemaType": schema_type, "schema": schema, "references": references});
    let url = format!("{}/subjects/{subject}/versions", url());
    let answer = block_on(async move {
        let r = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string())
            .send()
            .await
            .expect("the registry answers");
        let status = r.status();
        (status, r.text().await.unwrap())
    });
    assert!(answer.0.is_success(), "registering {subject}: {} {}", answer.0, answer.1);
    serde_json::from_str::<serde_json::Value>(&answer.1).unwrap()["id"].as_u64().unwrap() as u32
}

fn client() -> ConfluentRegistry {
    ConfluentRegistry::new(&url(), Auth::None, None, 5000).unwrap()
}

fn fetch(subject: &str, version: Version) -> topicgate::error::Result<topicgate::registry::confluent::SubjectVersion> {
    let c = client();
    let subject = subject.to_owned();
    block_on(async move { c.fetch(&subject, version).await })
}

const ADDRESS: &str =
    r#"{"type":"record","name":"Address","namespace":"tg.test","fields":[{"name":"city","type":"string"}]}"#;

fn order(extra_field: bool) -> String {
    let extra = if extra_field { r#",{"name":"note","type":"string","default":""}"# } else { "" };
    format!(
        r#"{{"type":"record","name":"Order","namespace":"tg.test","fields":[{{"name":"id","type":"long"}},{{"name":"ship_to","type":"tg.test.Address"}}{extra}]}}"#
    )
}

#[test]
fn avro_with_a_reference_latest_and_pinned() {
    let u = unique("cc");
    let address_id = register(&format!("{u}-address"), "AVRO", ADDRESS, json!([]));
    let refs = json!([{"name": "tg.test.Address", "subject": format!("{u}-address"), "version": 1}]);
    let v1 = register(&format!("{u}-value"), "AVRO", &order(false), refs.clone());
    let v2 = register(&format!("{u}-value"), "AVRO", &order(true), refs);
    assert!(address_id != v1 && v1 != v2, "{address_id} {v1} {v2}");

    let latest = fetch(&format!("{u}-value"), Version::Latest).unwrap();
    assert_eq!((latest.id, latest.version, latest.schema_type), (v2, 2, SchemaType::Avro));
    assert!(latest.schema.contains("\"note\""), "{}", latest.schema);
    assert_eq!(latest.references.len(), 1);
    let address: serde_json::Value = serde_json::from_str(&latest.references["tg.test.Address"]).unwrap();
    assert_eq!(address["name"], "Address");

    let pinned = fetch(&format!("{u}-value"), Version::Number(1)).unwrap();
    assert_eq!((pinned.id, pinned.version), (v1, 1));
    assert!(!pinned.schema.contains("\"note\""));
}

#[test]
fn protobuf_imports_resolve_transitively_and_json_schema_has_its_type() {
    let u = unique("cc");
    let base = "syntax = \"proto3\";\npackage tg.base;\nmessage Money { int64 units = 1; }\n";
    let mid =
        "syntax = \"proto3\";\npackage tg.mid;\nimport \"tg/base.proto\";\nmessage Line { tg.base.Money price = 1; }\n";
    let top = "syntax = \"proto3\";\npackage tg.top;\nimport \"tg/mid.proto\";\nmessage Order { repeated tg.mid.Line lines = 1; }\n";
    register(&format!("{u}-base"), "PROTOBUF", base, json!([]));
    register(
        &format!("{u}-mid"),
        "PROTOBUF",
        mid,
        json!([{"name": "tg/base.proto", "subject": format!("{u}-base"), "version": 1}]),
    );
    let id = register(
        &format!("{u}-value"),
        "PROTOBUF",
        top,
        json!([{"name": "tg/mid.proto", "subject": format!("{u}-mid"), "version": 1}]),
    );
    let v = fetch(&format!("{u}-value"), Version::Latest).unwrap();
    assert_eq!((v.id, v.schema_type), (id, SchemaType::Protobuf));
    assert_eq!(v.references.keys().collect::<Vec<_>>(), ["tg/base.proto", "tg/mid.proto"]);
    assert!(v.references["tg/base.proto"].contains("message Money"));

    let schema =
        r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"type":"string"}}}"#;
    let json_id = register(&format!("{u}-json"), "JSON", schema, json!([]));
    let j = fetch(&format!("{u}-json"), Version::Latest).unwrap();
    assert_eq!((j.id, j.schema_type), (json_id, SchemaType::Json));
}

#[test]
fn missing_subjects_and_versions_are_404_naming_them() {
    let u = unique("cc");
    let e = fetch(&format!("{u}-value"), Version::Latest).unwrap_err();
    assert_eq!(e.status, Status::NotFound, "{e}");
    assert!(e.message.contains(&format!("`{u}-value` not found")), "{e}");

    register(&format!("{u}-value"), "AVRO", r#""string""#, json!([]));
    let e = fetch(&format!("{u}-value"), Version::Number(7)).unwrap_err();
    assert_eq!(e.status, Status::NotFound, "{e}");
    assert!(e.message.contains("no version 7"), "{e}");
}

/// `key_schema` with a Confluent registry: the key's subject is `<topic>-key` (TopicNameStrategy),
/// `<record_name>` with the record strategy; the key is framed with its own schema id, the value
/// with the value's. A topic whose key subject is missing is a 404 naming the subject.
#[test]
fn keys_are_encoded_with_the_topic_key_subject() {
    let u = unique("ck");
    let value_id = register(&format!("{u}-value"), "AVRO", ADDRESS, json!([]));
    let key = r#"{"type":"record","name":"Key","namespace":"tg.test","fields":[{"name":"id","type":"long"}]}"#;
    let key_id = register(&format!("{u}-key"), "AVRO", key, json!([]));
    let record_key_id = register(
        &format!("tg.test.RecordKey{u}"),
        "JSON",
        r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"RecordKey","type":"integer"}"#,
        json!([]),
    );
    assert!(value_id != key_id && key_id != record_key_id);
    let publisher = |registry: &str, key_schema: &str| {
        Publisher::new(&format!(
            r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"confluent","url":{:?}{registry}}},
                "value_format":"confluent","key_schema":{key_schema},"dry_run":true}}"#,
            url()
        ))
        .unwrap()
    };
    let record = |topic: &'static str, key: &'static [u8]| Record {
        topic,
        json: r#"{"city":"Lyon"}"#,
        headers: &[],
        key: Some(key),
    };
    let topic: &'static str = Box::leak(u.clone().into_boxed_str());
    let frame = |id: u32, body: &[u8]| [&[0u8][..], &id.to_be_bytes(), body].concat();

    let p = publisher("", "{}");
    let (value, key) = p.encode_with_key(&record(topic, br#"{"id": 7}"#)).unwrap();
    assert_eq!(value, frame(value_id, b"\x08Lyon"));
    assert_eq!(key, Some(frame(key_id, &[14]))); // 7 as Avro's zigzag varint
    let e = p.encode_with_key(&record(topic, br#"{"id": "seven"}"#)).unwrap_err();
    assert_eq!(e.status, Status::BadRequest);
    assert!(e.message.starts_with("key: field `id`"), "{}", e.message);
    // The key schema's entry is its own: the value alone (no key schema) still encodes.
    let missing: &'static str = Box::leak(format!("{u}-none").into_boxed_str());
    register(&format!("{missing}-value"), "AVRO", ADDRESS, json!([]));
    let e = p.encode_with_key(&record(missing, b"1")).unwrap_err();
    assert_eq!(e.status, Status::NotFound);
    assert!(e.message.contains(&format!("{missing}-key")), "{}", e.message);

    // RecordNameStrategy: the subject is the key's record name.
    let strategy = r#","subject_name_strategy":"record","record_name":"tg.test.Address""#;
    register("tg.test.Address", "AVRO", ADDRESS, json!([]));
    let p = publisher(strategy, &format!(r#"{{"record_name":"tg.test.RecordKey{u}"}}"#));
    let (_, key) = p.encode_with_key(&record(topic, b" 42 ")).unwrap();
    assert_eq!(key, Some(frame(record_key_id, b"42")));
}

/// By global id (Confluent v3's `schema_id`): the schema and its references, whichever subject
/// holds it; an id the registry lacks is a 404 naming it.
#[test]
fn a_schema_by_id_with_its_references_and_a_missing_id() {
    let u = unique("ccid");
    register(&format!("{u}-address"), "AVRO", ADDRESS, json!([]));
    let refs = json!([{"name": "tg.test.Address", "subject": format!("{u}-address"), "version": 1}]);
    let v1 = register(&format!("{u}-value"), "AVRO", &order(false), refs.clone());
    register(&format!("{u}-value"), "AVRO", &order(true), refs);
    let c = client();
    let by_id = block_on(async move { c.fetch_id(v1).await }).unwrap();
    assert_eq!((by_id.id, by_id.schema_type), (v1, SchemaType::Avro));
    assert!(!by_id.schema.contains("\"note\""), "version 1's text, not the latest: {}", by_id.schema);
    assert_eq!(by_id.references.keys().collect::<Vec<_>>(), ["tg.test.Address"]);
    let c = client();
    let e = block_on(async move { c.fetch_id(987_654_321).await }).unwrap_err();
    assert_eq!(e.status, Status::NotFound, "{e}");
    assert!(e.message.contains("schema id 987654321"), "{e}");
}
