//! Shared helpers for tests against the real servers started by `make kafka-up glue-up`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine;

/// A required environment variable; a missing server is a failure, never a skip.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test servers with `make kafka-up glue-up` and source .run/*.env (`make test` does both)")
    })
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A topic name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A temporary directory holding `<name>.proto` files.
pub fn schema_dir(files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("tg-schemas"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(format!("{name}.proto")), text).unwrap();
    }
    dir
}

/// The classic example schema.
pub const CLASSIC_PROTO: &str = r#"syntax = "proto3";
package events.v1;
message MyTopic {
  string sample_message = 1;
  int64 count = 2;
  Detail detail = 3;
}
message Detail { string note = 1; }
"#;

/// Protobuf bytes of `{"sample_message": s}` under CLASSIC_PROTO, worked out by hand: tag 0x0a, length, bytes.
pub fn classic_bytes(s: &str) -> Vec<u8> {
    assert!(s.len() < 128);
    let mut v = vec![0x0a, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// A config document for the local broker and a file registry.
pub fn file_config(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}"}},"registry":{{"kind":"file","directory":"{}"}}{extra}}}"#,
        env("KAFKA_BOOTSTRAP"),
        dir.display()
    )
}

/// A config document for the local broker and the Glue registry on moto.
pub fn glue_config(registry: &str, extra: &str) -> String {
    format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}"}},"registry":{{"kind":"glue","registry_name":"{registry}","region":"us-east-1","endpoint_url":"{}"}}{extra}}}"#,
        env("KAFKA_BOOTSTRAP"),
        env("AWS_ENDPOINT_URL_GLUE")
    )
}

/// One record as Kafka's own Java consumer read it back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A short-lived client JVM starts faster without the optimizing compiler.
const JVM_FLAGS: [&str; 2] = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"];

/// Reads `count` records from `topic`/`partition` starting at `offset` with tests/kafka/ReadBack.java.
pub fn read_back(topic: &str, partition: i32, offset: i64, count: usize) -> Vec<ReadRecord> {
    read_back_at(&env("KAFKA_BOOTSTRAP"), topic, partition, offset, count)
}

/// `read_back` against the broker at `bootstrap` (plaintext listener).
pub fn read_back_at(bootstrap: &str, topic: &str, partition: i32, offset: i64, count: usize) -> Vec<ReadRecord> {
    let out = Command::new("java")
        .current_dir(repo())
        .args(JVM_FLAGS)
        .args(["-cp", &env("KAFKA_CLASSPATH"), "tests/kafka/ReadBack.java", bootstrap, topic])
        .args([partition.to_string(), offset.to_string(), count.to_string(), "30000".to_owned()])
        .output()
        .expect("java runs");
    assert!(out.status.success(), "ReadBack failed: {}", String::from_utf8_lossy(&out.stderr));
    let b64 = base64::engine::general_purpose::STANDARD;
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ReadRecord {
                partition: v["partition"].as_i64().unwrap() as i32,
                offset: v["offset"].as_i64().unwrap(),
                key: v["key_b64"].as_str().map(|k| b64.decode(k).unwrap()),
                value: b64.decode(v["value_b64"].as_str().unwrap()).unwrap(),
                headers: v["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (h["key"].as_str().unwrap().to_owned(), b64.decode(h["value_b64"].as_str().unwrap()).unwrap())
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Sum of end offsets over all partitions of `topic` (records ever written).
pub fn records_on_topic(topic: &str) -> i64 {
    records_on_topic_at(&env("KAFKA_BOOTSTRAP"), topic)
}

/// `records_on_topic` against the broker at `bootstrap` (plaintext listener).
pub fn records_on_topic_at(bootstrap: &str, topic: &str) -> i64 {
    let out = Command::new("java")
        .current_dir(repo())
        .args(JVM_FLAGS)
        .args(["-cp", &env("KAFKA_CLASSPATH"), "tests/kafka/ReadBack.java", "--count", bootstrap, topic])
        .output()
        .expect("java runs");
    assert!(out.status.success(), "ReadBack --count failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("partition").is_some())
        .filter_map(|v| v["end_offset"].as_i64())
        .sum()
}

/// A Glue client on moto.
pub fn glue_client() -> aws_sdk_glue::Client {
    let endpoint = env("AWS_ENDPOINT_URL_GLUE");
    let config = block_on(async move {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .load()
            .await
    });
    aws_sdk_glue::Client::new(&config)
}

/// Runs a future to completion on a throwaway runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The one Glue registry the tests use (moto allows 10 registries; schemas get unique names).
pub const TEST_REGISTRY: &str = "topicgate-tests";

/// Creates a registry (if needed) and a PROTOBUF schema with its first version; returns that version's id.
pub fn glue_create_schema(registry: &str, name: &str, definition: &str) -> String {
    glue_create_schema_as(registry, name, definition, aws_sdk_glue::types::DataFormat::Protobuf)
}

/// `glue_create_schema` of another data format (AVRO, JSON).
pub fn glue_create_schema_as(
    registry: &str,
    name: &str,
    definition: &str,
    format: aws_sdk_glue::types::DataFormat,
) -> String {
    use aws_sdk_glue::types::{Compatibility, RegistryId};
    let client = glue_client();
    block_on(async {
        if let Err(e) = client.create_registry().registry_name(registry).send().await {
            let code = aws_sdk_glue::error::ProvideErrorMetadata::code(&e);
            assert_eq!(code, Some("AlreadyExistsException"), "create_registry on moto: {e:?}");
        }
        let out = client
            .create_schema()
            .registry_id(RegistryId::builder().registry_name(registry).build())
            .schema_name(name)
            .data_format(format)
            .compatibility(Compatibility::None)
            .schema_definition(definition)
            .send()
            .await
            .expect("create_schema on moto");
        out.schema_version_id().unwrap().to_owned()
    })
}

/// Registers a new version of an existing schema; returns (version id, version number).
pub fn glue_add_version(registry: &str, name: &str, definition: &str) -> (String, i64) {
    use aws_sdk_glue::types::SchemaId;
    let client = glue_client();
    block_on(async {
        let out = client
            .register_schema_version()
            .schema_id(SchemaId::builder().registry_name(registry).schema_name(name).build())
            .schema_definition(definition)
            .send()
            .await
            .expect("register_schema_version on moto");
        (out.schema_version_id().unwrap().to_owned(), out.version_number().unwrap())
    })
}
