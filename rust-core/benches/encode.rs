//! Micro-benchmarks of the core's CPU path (no broker): JSON→Protobuf for small, medium and
//! large messages, JSON→Avro and JSON Schema validation of the same 1 KB event, and a publish's
//! whole pre-send path with the schema already cached.
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

criterion_group!(core, benches);
criterion_main!(core);
