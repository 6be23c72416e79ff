//! `Config::from_json` on structured mutations of valid configs (keys set to other values or types,
//! deleted, added): see `check_config_document`. Inputs are decoded with `arbitrary`; a crash's
//! document text (in the panic message) is what a regression keeps.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// Every key of the config, and strings its values may take.
const WORDS: &[&str] = &[
    "kafka",
    "bootstrap_servers",
    "tls",
    "auth",
    "properties",
    "ca_file",
    "cert_file",
    "key_file",
    "key_password",
    "verify_hostname",
    "mechanism",
    "username",
    "password",
    "region",
    "role_arn",
    "role_session_name",
    "token_lifetime_ms",
    "registry",
    "kind",
    "registry_name",
    "endpoint_url",
    "timeout_ms",
    "directory",
    "schema",
    "name_template",
    "version",
    "message_type",
    "allow_unknown_fields",
    "refresh_interval_ms",
    "value_format",
    "glue_compression",
    "limits",
    "max_message_bytes",
    "max_key_bytes",
    "max_headers",
    "max_header_bytes",
    "delivery_timeout_ms",
    "dry_run",
    "file",
    "glue",
    "raw",
    "zlib",
    "none",
    "latest",
    "first",
    "plain",
    "scram-sha-256",
    "scram-sha-512",
    "aws-msk-iam",
    "{topic}",
    "{topic}-value",
    "${TG_FUZZ_SECRET}",
    "${TG_FUZZ_UNSET}",
    "/",
    "/nonexistent",
    "acks",
    "bootstrap.servers",
    "message.timeout.ms",
    "security.protocol",
    "sasl.mechanism",
    "linger.ms",
    "127.0.0.1:9092",
    "eu-west-1",
    "fuzz.Event",
];

#[derive(Arbitrary, Debug)]
struct Input {
    base: u8,
    mutations: Vec<Mutation>,
}

#[derive(Arbitrary, Debug)]
struct Mutation {
    path: Vec<Word>,
    op: Op,
}

#[derive(Arbitrary, Debug)]
enum Word {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Delete,
    Set(Scalar),
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Word(Word),
    Object,
    Array(Vec<i8>),
}

impl Word {
    fn text(&self) -> String {
        match self {
            Word::Known(i) => WORDS[usize::from(*i) % WORDS.len()].to_owned(),
            Word::Other(s) => s.clone(),
        }
    }
}

impl Scalar {
    fn value(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => json!(b),
            Scalar::Int(i) => json!(i),
            Scalar::UInt(u) => json!(u),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::Word(w) => Value::String(w.text()),
            Scalar::Object => Value::Object(Map::new()),
            Scalar::Array(v) => json!(v),
        }
    }
}

fn bases() -> [Value; 3] {
    let dir = std::env::temp_dir().display().to_string();
    [
        json!({
            "kafka": {"bootstrap_servers": "127.0.0.1:9092", "properties": {"acks": "all", "linger.ms": 1}},
            "registry": {"kind": "file", "directory": dir},
            "schema": {"name_template": "{topic}", "version": "latest", "message_type": "first",
                       "allow_unknown_fields": false, "refresh_interval_ms": 1000},
            "value_format": "raw", "glue_compression": "none",
            "limits": {"max_message_bytes": 1024, "max_key_bytes": 16, "max_headers": 4, "max_header_bytes": 64},
            "delivery_timeout_ms": 100, "dry_run": true
        }),
        json!({
            "kafka": {"bootstrap_servers": "b1:9094,b2:9094", "tls": {"verify_hostname": false},
                      "auth": {"mechanism": "scram-sha-512", "username": "u", "password": "${TG_FUZZ_SECRET}"}},
            "registry": {"kind": "glue", "registry_name": "r", "region": "eu-west-1",
                         "endpoint_url": "http://127.0.0.1:1", "timeout_ms": 100},
            "schema": {"name_template": "{topic}-value", "version": 3, "message_type": "fuzz.Event"},
            "value_format": "glue", "glue_compression": "zlib"
        }),
        json!({
            "kafka": {"bootstrap_servers": "b:9098", "auth": {"mechanism": "aws-msk-iam", "region": "eu-west-1",
                      "role_session_name": "s", "token_lifetime_ms": 60000}},
            "registry": {"kind": "glue", "registry_name": "r"}
        }),
    ]
}

fn apply(doc: &mut Value, m: &Mutation) {
    let path: Vec<String> = m.path.iter().take(4).map(Word::text).collect();
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = doc;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node.as_object_mut().unwrap().entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let object = node.as_object_mut().unwrap();
    match &m.op {
        Op::Delete => {
            object.remove(last);
        }
        Op::Set(s) => {
            object.insert(last.clone(), s.value());
        }
    }
}

fuzz_target!(|input: Input| {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| std::env::set_var("TG_FUZZ_SECRET", "fuzz-secret"));
    let bases = bases();
    let mut doc = bases[usize::from(input.base) % bases.len()].clone();
    for m in input.mutations.iter().take(4) {
        apply(&mut doc, m);
    }
    topicgate_fuzz::check_config_document(&doc.to_string());
});
