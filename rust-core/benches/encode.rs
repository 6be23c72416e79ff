//! Micro-benchmarks of the core's CPU path (no broker): JSON→Protobuf for small, medium and
//! large messages, JSON→Avro and JSON Schema validation of the same 1 KB event, a publish's whole
//! pre-send path with the schema already cached, and `bench/payload.json` in all three formats.
//! `make bench-core`; criterion prints medians and writes target/criterion/.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use topicgate::encoding::avro::AvroEncoder;
use topicgate::encoding::json_schema::JsonSchemaEncoder;
use topicgate::encoding::Encoder;
use topicgate::{Publisher, Record};

const PROTO: &str = r#"syntax = "proto3";
package bench.v1;
message Event {
  string sample_message = 1;
  int64 id = 2;
  string source = 3;
  repeated string tags = 4;
  map<string, string> attributes = 5;
  Detail detail = 6;
  repeated Detail items = 7;
  double score = 8;
  bool active = 9;
}
message Detail { string name = 1; int32 count = 2; string note = 3; }
"#;

/// The Avro schema of `Event` (same fields, a `long` id, a nullable note).
const AVSC: &str = r#"{"type":"record","name":"Event","namespace":"bench.v1","fields":[
  {"name":"sample_message","type":"string"},
  {"name":"id","type":"long"},
  {"name":"source","type":"string","default":""},
  {"name":"tags","type":{"type":"array","items":"string"},"default":[]},
  {"name":"attributes","type":{"type":"map","values":"string"},"default":{}},
  {"name":"detail","type":["null",{"type":"record","name":"Detail","fields":[
    {"name":"name","type":"string"},{"name":"count","type":"int"},{"name":"note","type":["null","string"],"default":null}]}],"default":null},
  {"name":"items","type":{"type":"array","items":"Detail"},"default":[]},
  {"name":"score","type":"double","default":0},
  {"name":"active","type":"boolean","default":false}]}"#;

/// The JSON Schema of `Event`.
const JSON_SCHEMA: &str = r##"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
  "required":["sample_message"],"additionalProperties":false,
  "properties":{"sample_message":{"type":"string"},"id":{"type":["string","integer"]},"source":{"type":"string"},
    "tags":{"type":"array","items":{"type":"string"}},"attributes":{"type":"object","additionalProperties":{"type":"string"}},
    "detail":{"$ref":"#/$defs/detail"},"items":{"type":"array","items":{"$ref":"#/$defs/detail"}},
    "score":{"type":"number"},"active":{"type":"boolean"}},
  "$defs":{"detail":{"type":"object","additionalProperties":false,
    "properties":{"name":{"type":"string"},"count":{"type":"integer"},"note":{"type":"string"}}}}}"##;

/// A realistic event of roughly `target` bytes of JSON.
fn event(target: usize) -> String {
    let mut items = Vec::new();
    let mut json = String::new();
    while json.len() < target {
        items.push(format!(
            r#"{{"name":"item-{n}","count":{n},"note":"lorem ipsum dolor sit amet {n}"}}"#,
            n = items.len()
        ));
        json = format!(
            r#"{{"sample_message":"hello world","id":"1234567890123","source":"checkout-service","tags":["a","b","c"],"attributes":{{"region":"eu-west-1","tier":"gold"}},"detail":{{"name":"d","count":3,"note":"n"}},"items":[{}],"score":0.75,"active":true}}"#,
            items.join(",")
        );
        if target < 200 {
            return r#"{"sample_message":"hello world","id":"42","source":"svc","active":true}"#.to_owned();
        }
    }
    json
}

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Event.proto"), PROTO).unwrap();
    // Nothing is sent: the broker address is never contacted by `encode`.
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"file","directory":"{}"}},"limits":{{"max_message_bytes":1048576}}}}"#,
        dir.display()
    );
    let publisher = Publisher::new(&config).unwrap();
    let rec = |json: &'static str| Record { topic: "Event", json, headers: &[], key: None };
    let desc = {
        publisher.encode(&rec("{}")).unwrap(); // fills the schema cache
        let pool = protox::Compiler::new([&dir]).unwrap().open_file("Event.proto").unwrap().descriptor_pool();
        pool.get_message_by_name("bench.v1.Event").unwrap()
    };

    // The direct writer (what publishes use) and prost-reflect's DynamicMessage path side by side.
    let encoder = Encoder::new(desc);
    let mut g = c.benchmark_group("json_to_protobuf");
    for (name, size) in [("small_100B", 100), ("medium_1KB", 1024), ("large_64KB", 64 * 1024)] {
        let json: &'static str = Box::leak(event(size).into_boxed_str());
        assert_eq!(
            encoder.encode(json, false).unwrap().len(),
            encoder.encode_via_dynamic_message(json, false).unwrap().len()
        );
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_with_input(BenchmarkId::new("direct", name), json, |b, json| {
            b.iter(|| encoder.encode(black_box(json), false).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("dynamic_message", name), json, |b, json| {
            b.iter(|| encoder.encode_via_dynamic_message(black_box(json), false).unwrap())
        });
    }
    g.finish();

    let medium: &'static str = Box::leak(event(1024).into_boxed_str());
    // Issue #23's budgets: Avro encode of a 1 KB payload < 5 µs, JSON Schema validation < 10 µs.
    let avro = AvroEncoder::new(AVSC).unwrap();
    avro.encode(medium, false).unwrap();
    c.bench_function("json_to_avro_1KB", |b| b.iter(|| avro.encode(black_box(medium), false).unwrap()));
    let json_schema = JsonSchemaEncoder::new(JSON_SCHEMA, jsonschema::Draft::Draft202012).unwrap();
    json_schema.encode(medium).unwrap();
    c.bench_function("json_schema_validate_1KB", |b| b.iter(|| json_schema.encode(black_box(medium)).unwrap()));
    c.bench_function("publisher_encode_cached_schema_1KB", |b| {
        b.iter(|| publisher.encode(black_box(&rec(medium))).unwrap())
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue #23's contenders in the core: `bench/payload.json` (the gateway bench's 1 KB payload)
/// through the example schemas of `krakend/schemas` (MyTopic.proto, MyAvroTopic.avsc,
/// MyJsonTopic.json), each format's encoder alone and a publish's whole pre-send path (limits,
/// cached schema, encode, framing). Goals: Avro encode < 5 µs, JSON Schema validation < 10 µs.
fn payload_1kb(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let examples = root.join("krakend").join("schemas");
    let payload = std::fs::read_to_string(root.join("bench").join("payload.json")).unwrap();
    let payload = payload.trim_end();
    // The JSON Schema example types event_id as an integer; Protobuf's int64 and Avro's long also
    // take the decimal string the payload has. bench/run.py sends the JSON Schema route the same.
    let payload_json = payload.replace(r#""event_id":"918273645501""#, r#""event_id":918273645501"#);
    assert_ne!(payload_json, payload, "bench/payload.json no longer has the event_id this replaces");
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"file","directory":{}}}}}"#,
        serde_json::to_string(&examples).unwrap()
    );
    let publisher = Publisher::new(&config).unwrap();
    let rec = |topic, json| Record { topic, json, headers: &[], key: None };

    let pool = protox::Compiler::new([&examples]).unwrap().open_file("MyTopic.proto").unwrap().descriptor_pool();
    let protobuf = Encoder::new(pool.get_message_by_name("topicgate.example.MyTopicEvent").unwrap());
    let avro = AvroEncoder::new(&std::fs::read_to_string(examples.join("MyAvroTopic.avsc")).unwrap()).unwrap();
    let json_schema = JsonSchemaEncoder::new(
        &std::fs::read_to_string(examples.join("MyJsonTopic.json")).unwrap(),
        jsonschema::Draft::Draft202012,
    )
    .unwrap();

    let mut g = c.benchmark_group("payload_1KB");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("protobuf_encode", |b| b.iter(|| protobuf.encode(black_box(payload), false).unwrap()));
    g.bench_function("avro_encode", |b| b.iter(|| avro.encode(black_box(payload), false).unwrap()));
    // The general path alone (body parsed into a serde_json::Value first), what `avro_encode` was
    // before the schema-driven reader: old and new side by side in one run.
    // (Lengths only: the map's entries are written in `HashMap` order.)
    assert_eq!(avro.encode(payload, false).unwrap().len(), avro.encode_via_json(payload, false).unwrap().len());
    g.bench_function("avro_encode_via_json", |b| b.iter(|| avro.encode_via_json(black_box(payload), false).unwrap()));
    g.bench_function("json_schema_validate", |b| b.iter(|| json_schema.encode(black_box(&payload_json)).unwrap()));
    for (name, topic, json) in [
        ("protobuf_publish_path", "MyTopic", payload),
        ("avro_publish_path", "MyAvroTopic", payload),
        ("json_schema_publish_path", "MyJsonTopic", payload_json.as_str()),
    ] {
        publisher.encode(&rec(topic, json)).unwrap(); // fills the schema cache
        g.bench_function(name, |b| b.iter(|| publisher.encode(black_box(&rec(topic, json))).unwrap()));
    }
    g.finish();
}

criterion_group!(core, benches, payload_1kb);
criterion_main!(core);
