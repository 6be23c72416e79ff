//! The fuzz targets' checks, one `check_*` function per target, and their oracles (test schemas,
//! round trip, no echo). Kept free of libFuzzer so `rust-core/tests/fuzz_regressions.rs` can include
//! this file (`#[path]`) and replay saved crashing inputs under stable `cargo test`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, Value};
use topicgate::config::{GlueCompression, Limits, MessageType};
use topicgate::encoding::json_to_protobuf;
use topicgate::ffi::{
    tg_completion, tg_delivery, tg_header, tg_publish, tg_publish_start, tg_publisher, tg_publisher_completions,
    tg_publisher_free, tg_publisher_new, tg_status,
};
use topicgate::headers::{check, header};
use topicgate::registry::{SchemaFormat, SchemaText};
use topicgate::wire::{Framing, GLUE_COMPRESSION_NONE, GLUE_COMPRESSION_ZLIB, GLUE_HEADER_VERSION};
use topicgate::{Config, Status};
use uuid::Uuid;

/// The `.proto` the JSON targets encode against (package `fuzz`).
pub const FUZZ_PROTO: &str = include_str!("../schemas/fuzz.proto");

/// The messages of `FUZZ_PROTO` a fuzz input can pick, by its first byte.
pub const MESSAGES: &[&str] = &[
    "fuzz.Everything",
    "fuzz.Scalars",
    "fuzz.Enums",
    "fuzz.Nested",
    "fuzz.Repeats",
    "fuzz.Maps",
    "fuzz.Choice",
    "fuzz.WellKnown",
    "fuzz.Tree",
];

/// Every status value `tg_status` has (HTTP codes).
pub const STATUSES: &[i32] = &[200, 400, 404, 413, 500, 503, 504];

/// The first message of a `.proto` text, compiled the way the core compiles a registry's schema.
pub fn first_message(file_name: &str, source: &str) -> MessageDescriptor {
    let text = SchemaText {
        file_name: file_name.into(),
        definition: source.into(),
        version_id: None,
        version_number: None,
        import_dir: None,
        schema_id: None,
        references: Default::default(),
        format: SchemaFormat::Protobuf,
    };
    let compiled = topicgate::schema::compile(&text, &MessageType::First).expect("fuzz schema compiles");
    compiled.protobuf_message().expect("a Protobuf schema").clone()
}

/// `FUZZ_PROTO` compiled once.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| first_message("fuzz.proto", FUZZ_PROTO).parent_pool().clone())
}

/// A message of `FUZZ_PROTO` by full name.
pub fn message(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).expect("message in fuzz.proto")
}

/// Bytes `json_to_protobuf` returned must decode under the same descriptor, and encoding the decoded
/// message again must give the same bytes (map entries may come out in another order: then the two
/// decodings must be equal, floats compared bit for bit).
pub fn assert_round_trip(desc: &MessageDescriptor, bytes: &[u8]) {
    let decoded = DynamicMessage::decode(desc.clone(), bytes)
        .unwrap_or_else(|e| panic!("encoded bytes do not decode as {}: {e}", desc.full_name()));
    let again = decoded.encode_to_vec();
    if again == bytes {
        return;
    }
    assert_eq!(again.len(), bytes.len(), "re-encoding changed the length");
    let redecoded = DynamicMessage::decode(desc.clone(), again.as_slice()).expect("re-encoded bytes decode");
    assert!(same_message(&decoded, &redecoded), "re-encoding changed the message");
}

fn same_message(a: &DynamicMessage, b: &DynamicMessage) -> bool {
    let fields_a: Vec<_> = a.fields().collect();
    let fields_b: Vec<_> = b.fields().collect();
    fields_a.len() == fields_b.len()
        && fields_a.iter().zip(&fields_b).all(|((fa, va), (fb, vb))| fa.number() == fb.number() && same_value(va, vb))
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::Message(x), Value::Message(y)) => same_message(x, y),
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// The string literals of (possibly malformed) JSON text, decoded where possible: (keys, values).
pub fn string_literals(json: &str) -> (Vec<String>, Vec<String>) {
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (span, is_key) in literal_spans(json) {
        let raw = &json[span];
        let text = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.trim_matches('"').to_owned());
        if is_key {
            keys.push(text);
        } else {
            values.push(text);
        }
    }
    (keys, values)
}

/// Where the string literals of (possibly malformed) JSON text are, quotes included, and whether
/// each is a key (followed by `:`).
fn literal_spans(json: &str) -> Vec<(std::ops::Range<usize>, bool)> {
    let bytes = json.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let mut end = (i + 1).min(bytes.len()).max(start + 1);
        // An escape before the end of a truncated text can step into a multi-byte character.
        while !json.is_char_boundary(end) {
            end -= 1;
        }
        i = end;
        let next = bytes[i.min(bytes.len())..].iter().find(|b| !b.is_ascii_whitespace());
        spans.push((start..end, next == Some(&b':')));
    }
    spans
}

/// Words an error message may contain on its own: the schema's names and the parsers' phrases.
fn vocabulary() -> &'static str {
    static VOCABULARY: OnceLock<String> = OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let mut v = String::from(
            "body: field invalid type: value: expected a string an integer a boolean a map a sequence \
             floating point null unit struct unrecognized field name enum value out of range \
             trailing characters EOF while parsing an object a list a value string number \
             key must be a string control character (\\u0000-\\u001F) found while parsing a string \
             invalid escape invalid unicode code point lone leading surrogate in hex escape \
             unexpected end of hex escape recursion limit exceeded number out of range \
             invalid number expected `,` or `}` expected `,` or `]` expected `:` expected value \
             expected ident invalid base64 Invalid byte, offset Invalid last symbol Encoded text \
             cannot have a 6-bit remainder Invalid padding duplicate field invalid digit found in string \
             cannot parse integer from empty string number too large to fit in target type \
             number too small to fit in target type invalid float literal invalid field mask \
             expected integer value float value out of range does not match the schema \
             unexpected value in map expected null invalid timestamp invalid duration \
             timestamp out of range duration out of range invalid type url message not found \
             is empty; expected a JSON object must be a JSON object i64 u64 i32 u32 f64 f32 \
             line column ",
        );
        for m in pool().all_messages() {
            v.push_str(m.full_name());
            v.push(' ');
            for f in m.fields() {
                v.push_str(f.name());
                v.push(' ');
                v.push_str(f.json_name());
                v.push(' ');
            }
        }
        for e in pool().all_enums() {
            for value in e.values() {
                v.push_str(value.name());
                v.push(' ');
            }
        }
        v
    })
}

/// No string value of the input may appear in an error message (the payload is never echoed).
/// Keys may (they name the field), and so may text the message holds anyway (`vocabulary`).
/// `rerun` answers the error message (None if accepted) for the input with some text replaced:
/// a piece of a value only counts as echoed if replacing it in the input takes it out of the
/// message, so words the message holds for other reasons are never blamed on the value.
pub fn assert_no_value_echo(message: &str, json: &str, rerun: impl Fn(&str) -> Option<String>) {
    // " (line L, column C)" is added by the core and holds only numbers.
    let body = match message.rfind(" (line ") {
        Some(i) => &message[..i],
        None => message,
    };
    // An unknown field's name is a key the client sent; naming it is the point of the message.
    // (The literal splitter can take such a key for a value in malformed JSON.)
    let body = match body.find("unrecognized field name '") {
        Some(i) => &body[..i],
        None => body,
    };
    let (keys, values) = string_literals(json);
    for literal in values {
        // The whole literal when short, else every 8-character window of it (a partial echo counts).
        let chars: Vec<char> = literal.chars().collect();
        let windows: Vec<String> = match chars.len() {
            0..4 => continue,
            4..=8 => vec![literal.clone()],
            _ => chars.windows(8).map(|w| w.iter().collect()).collect(),
        };
        let Some(echo) = windows.into_iter().find(|w| {
            body.contains(w.as_str())
                && !vocabulary().contains(w.as_str())
                && !keys.iter().any(|k| k.contains(w.as_str()))
                && echoed(w, json, &rerun)
        }) else {
            continue;
        };
        panic!("error message echoes {echo:?} of the input value {literal:?}: {message:?}");
    }
}

/// Whether `window`, found in an error message, came from the input: it is replaced in the input's
/// string values by as many other characters and the input run again. Still in the message means
/// it came from elsewhere; gone means echoed. Accepted after the change, or not in any value's raw
/// text (an escape spelled it), is taken as echoed: nothing shows the contrary.
fn echoed(window: &str, json: &str, rerun: impl Fn(&str) -> Option<String>) -> bool {
    let filler = ['~', '#', '%'].into_iter().find(|c| !window.contains(*c)).expect("a window is 8 characters or fewer");
    let filler = filler.to_string().repeat(window.chars().count());
    // Only inside string values: the same text as a keyword (`true`), a number or a key stays.
    let mut changed = String::with_capacity(json.len());
    let mut copied = 0;
    for (span, is_key) in literal_spans(json) {
        if !is_key {
            changed.push_str(&json[copied..span.start]);
            changed.push_str(&json[span.clone()].replace(window, &filler));
            copied = span.end;
        }
    }
    changed.push_str(&json[copied..]);
    if changed == json {
        return true;
    }
    match rerun(&changed) {
        Some(message) => !message.contains(window),
        None => true,
    }
}

/// Splits header pairs off `bytes`: each a u8 name length, the name, a u8 value length, the value
/// (shorter when the input ends).
pub fn header_pairs(mut bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    while let Some(name) = length_prefixed_u8(&mut bytes) {
        out.push((name, length_prefixed_u8(&mut bytes).unwrap_or_default()));
    }
    out
}

/// Splits off a u8 length and that many bytes (fewer when the input ends); None at the end.
fn length_prefixed_u8<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, tail) = rest.split_first()?;
    let (part, tail) = tail.split_at(usize::from(len).min(tail.len()));
    *rest = tail;
    Some(part)
}

/// `headers`: byte 0 = max_headers, byte 1 = max_header_bytes / 4, the rest header pairs
/// (`header_pairs`). header is Ok exactly when the name is UTF-8, and keeps name and value bytes
/// as given; its errors are 400 "headers: …". check is Ok exactly when count, empty names and total
/// size are within the limits; else 413 / 400.
pub fn check_headers(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let mut headers = Vec::new();
    for (i, (name, value)) in header_pairs(&data[2..]).into_iter().enumerate() {
        match header(i, name, value) {
            Ok(h) => {
                assert_eq!((h.0.as_bytes(), h.1.as_slice()), (name, value));
                headers.push(h);
            }
            Err(e) => {
                assert!(std::str::from_utf8(name).is_err(), "refused a UTF-8 name: {e}");
                assert_eq!(e.status, Status::BadRequest);
                assert!(e.message.starts_with("headers: "), "{}", e.message);
                return;
            }
        }
    }
    let limits =
        Limits { max_headers: usize::from(data[0]), max_header_bytes: usize::from(data[1]) * 4, ..Limits::default() };
    let total: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    let within = headers.len() <= limits.max_headers
        && headers.iter().all(|(k, _)| !k.is_empty())
        && total <= limits.max_header_bytes;
    match check(&headers, &limits) {
        Ok(()) => assert!(within, "{} headers, {total} bytes passed {limits:?}", headers.len()),
        Err(e) => {
            assert!(!within, "{e}");
            assert!(matches!(e.status, Status::BadRequest | Status::PayloadTooLarge), "{e}");
            assert!(e.message.starts_with("headers: "), "{}", e.message);
        }
    }
}

/// `json_to_protobuf`: byte 0 picks the message (low bits) and allow_unknown_fields (bit 7); the rest
/// is the body. Ok: the bytes decode under the same descriptor and re-encode to the same bytes.
/// Err: status 400 and no string value of the body in the message.
pub fn check_json_to_protobuf(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let Ok(json) = std::str::from_utf8(body) else { return };
    let desc = message(MESSAGES[usize::from(pick & 0x7f) % MESSAGES.len()]);
    match json_to_protobuf(&desc, json, pick & 0x80 != 0) {
        Ok(bytes) => assert_round_trip(&desc, &bytes),
        Err(e) => {
            assert_eq!(e.status, Status::BadRequest, "{e}");
            assert!(!e.message.is_empty());
            let rerun = |changed: &str| json_to_protobuf(&desc, changed, pick & 0x80 != 0).err().map(|e| e.message);
            assert_no_value_echo(&e.message, json, rerun);
        }
    }
}

/// `wire`: byte 0 picks raw / glue / glue+zlib, bytes 1..5 the message index (LE), 5..21 the UUID, the
/// rest is the payload. Raw is the payload; Glue is 0x03, the compression byte, the UUID, then
/// (zlib-compressed or not) varint(message index) + payload.
pub fn check_wire(data: &[u8]) {
    if data.len() < 21 {
        return;
    }
    let index = u32::from_le_bytes(data[1..5].try_into().unwrap());
    let id = Uuid::from_bytes(data[5..21].try_into().unwrap());
    let payload = &data[21..];
    let compression = match data[0] % 3 {
        0 => {
            assert_eq!(Framing::Raw.frame(payload.to_vec()), payload);
            return;
        }
        1 => GlueCompression::None,
        _ => GlueCompression::Zlib,
    };
    let out = Framing::Glue { schema_version_id: id, message_index: Some(index), compression }.frame(payload.to_vec());
    assert!(out.len() >= 18, "glue frame shorter than its header");
    assert_eq!(out[0], GLUE_HEADER_VERSION);
    assert_eq!(&out[2..18], id.as_bytes());
    let body = match compression {
        GlueCompression::None => {
            assert_eq!(out[1], GLUE_COMPRESSION_NONE);
            out[18..].to_vec()
        }
        GlueCompression::Zlib => {
            assert_eq!(out[1], GLUE_COMPRESSION_ZLIB);
            let mut plain = Vec::new();
            flate2::read::ZlibDecoder::new(&out[18..]).read_to_end(&mut plain).expect("zlib body inflates");
            plain
        }
    };
    let mut rest = body.as_slice();
    let decoded_index = prost::encoding::decode_varint(&mut rest).expect("message index is a varint");
    assert_eq!(decoded_index, u64::from(index));
    assert_eq!(rest, payload, "payload after the message index");
}

/// `config_text`: `Config::from_json` on arbitrary text never panics; every error is a 400
/// "config: …"; an accepted config yields producer properties or a 400 naming a key.
pub fn check_config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_json(text) {
        Ok(config) => check_producer_properties(&config),
        Err(e) => {
            assert_eq!(e.status, Status::BadRequest, "{e}");
            assert!(e.message.starts_with("config: ") && e.message.len() > "config: ".len(), "{}", e.message);
        }
    }
}

/// Top-level config keys: a "config: <path>: " prefix must start with one of them.
const CONFIG_TOP_LEVEL: &[&str] =
    &["kafka", "registry", "schema", "value_format", "glue_compression", "limits", "delivery_timeout_ms", "dry_run"];

/// "config: kafka.tls.ca_file: …" or "… field `kafka` …".
pub fn names_a_key(message: &str) -> bool {
    let Some(rest) = message.strip_prefix("config: ") else { return false };
    let prefixed = rest.split_once(": ").is_some_and(|(path, _)| {
        CONFIG_TOP_LEVEL
            .iter()
            .any(|k| path == *k || path.starts_with(&format!("{k}.")) || path.starts_with(&format!("{k}[")))
    });
    prefixed || rest.contains("field `")
}

fn check_producer_properties(config: &Config) {
    if let Err(e) = config.producer_properties() {
        assert_eq!(e.status, Status::BadRequest, "{e}");
        assert!(names_a_key(&e.message), "producer properties error names no key: {:?}", e.message);
    }
}

/// `config_mutations` (the mutated document's text): never panics; every error is a 400 naming a key.
pub fn check_config_document(text: &str) {
    match Config::from_json(text) {
        Ok(config) => check_producer_properties(&config),
        Err(e) => {
            assert_eq!(e.status, Status::BadRequest, "{e}");
            assert!(names_a_key(&e.message), "error names no key: {:?} for {text}", e.message);
        }
    }
}

/// Configs naming AWS (Glue, MSK IAM) must never reach a real AWS endpoint or metadata service.
fn offline_aws() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFUZZ");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "fuzz");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    });
}

/// The message in an error buffer: None when there is no buffer; panics unless NUL-terminated UTF-8.
fn buffer_message(errbuf: &[u8], is_null: bool) -> Option<&str> {
    if is_null || errbuf.is_empty() {
        return None;
    }
    let nul = errbuf.iter().position(|&b| b == 0).expect("errbuf NUL-terminated");
    Some(std::str::from_utf8(&errbuf[..nul]).expect("errbuf holds UTF-8"))
}

/// `ffi_publisher_new`: byte 0 = error buffer length, the rest is the config (any bytes). The status is
/// a tg_status value; 200 gives a handle (then freed) and an empty message, anything else a NULL
/// handle and a NUL-terminated message inside the buffer.
pub fn check_ffi_publisher_new(data: &[u8]) {
    offline_aws();
    let Some((&buf_len, config)) = data.split_first() else { return };
    // Exactly sized, so AddressSanitizer sees any write past it.
    let mut errbuf = vec![0x55u8; usize::from(buf_len)];
    let mut out = std::ptr::null_mut();
    let status =
        unsafe { tg_publisher_new(config.as_ptr(), config.len(), &mut out, errbuf.as_mut_ptr().cast(), errbuf.len()) };
    assert!(STATUSES.contains(&(status as i32)), "status {}", status as i32);
    let message = buffer_message(&errbuf, false);
    if status == tg_status::Ok {
        assert!(!out.is_null());
        unsafe { tg_publisher_free(out) };
        assert!(message.is_none_or(str::is_empty), "message on 200: {message:?}");
    } else {
        assert!(out.is_null(), "handle returned with status {}", status as i32);
        assert!(message.is_none_or(|m| !m.is_empty() || errbuf.len() == 1), "empty error message");
    }
}

const SMALL_PROTO: &str = "syntax = \"proto3\";\nmessage Small { string s = 1; int32 n = 2; }\n";
const PUBLISH_MAX_MESSAGE_BYTES: usize = 8192;
const PUBLISH_MAX_KEY_BYTES: usize = 64;
const PUBLISH_MAX_HEADERS: usize = 4;
const PUBLISH_MAX_HEADER_BYTES: usize = 256;

struct PublishFixture {
    /// A `*const tg_publisher`, kept for the process's life.
    publisher: usize,
    everything: MessageDescriptor,
    small: MessageDescriptor,
    config: String,
}

/// A dry-run publisher over a temp directory with Everything.proto, Small.proto and Broken.proto.
fn publish_fixture() -> &'static PublishFixture {
    static FIXTURE: OnceLock<PublishFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir: PathBuf = std::env::temp_dir().join(format!("topicgate-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Everything.proto"), FUZZ_PROTO).unwrap();
        std::fs::write(dir.join("Small.proto"), SMALL_PROTO).unwrap();
        std::fs::write(dir.join("Broken.proto"), "syntax = \"proto3\"; message {").unwrap();
        let config = serde_json::json!({
            "kafka": {"bootstrap_servers": "127.0.0.1:9"},
            "registry": {"kind": "file", "directory": dir},
            "dry_run": true,
            "limits": {"max_message_bytes": PUBLISH_MAX_MESSAGE_BYTES, "max_key_bytes": PUBLISH_MAX_KEY_BYTES,
                       "max_headers": PUBLISH_MAX_HEADERS, "max_header_bytes": PUBLISH_MAX_HEADER_BYTES}
        })
        .to_string();
        PublishFixture {
            publisher: new_publisher(&config),
            everything: message("fuzz.Everything"),
            small: first_message("Small.proto", SMALL_PROTO),
            config,
        }
    })
}

/// A publisher from `config`, as a `usize` so that statics can hold it; never freed.
fn new_publisher(config: &str) -> usize {
    let mut out: *mut tg_publisher = std::ptr::null_mut();
    let status = unsafe { tg_publisher_new(config.as_ptr(), config.len(), &mut out, std::ptr::null_mut(), 0) };
    assert_eq!(status, tg_status::Ok);
    out as usize
}

/// This thread's own publisher of the fixture's config, for `tg_publish_start`: a completion
/// queue is per publisher, and tests run on several threads at once.
fn starting_publisher() -> *const tg_publisher {
    thread_local! {
        static STARTER: usize = new_publisher(&publish_fixture().config);
    }
    STARTER.with(|p| *p as *const tg_publisher)
}

/// Splits off a u16 LE length and that many bytes (fewer when the input ends).
fn length_prefixed<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let len = match rest {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    *rest = &rest[rest.len().min(2)..];
    let (value, tail) = rest.split_at(len.min(rest.len()));
    *rest = tail;
    value
}

fn valid_body(desc: &MessageDescriptor, json: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(json) else { return false };
    if text.len() > PUBLISH_MAX_MESSAGE_BYTES {
        return false;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &options).is_ok() && de.end().is_ok()
}

/// Whether two keys of the text might name one field: equal once '_' is dropped and case folded.
/// Keys of different objects are compared too, which only makes the answer more often true.
fn maybe_duplicate_keys(json: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(json) else { return false };
    let (keys, _) = string_literals(text);
    let mut seen = std::collections::HashSet::new();
    !keys.iter().all(|k| seen.insert(k.replace('_', "").to_lowercase()))
}

fn valid_headers(pairs: &[(&[u8], &[u8])]) -> bool {
    let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    pairs.len() <= PUBLISH_MAX_HEADERS
        && total <= PUBLISH_MAX_HEADER_BYTES
        && pairs.iter().all(|(k, _)| !k.is_empty() && std::str::from_utf8(k).is_ok())
}

/// `ffi_publish`: byte 0 flags (bits 0..5: topic, headers, key, body, errbuf, delivery are NULL), byte 1
/// the errbuf length, then topic, headers and key each as u16 LE length + bytes, then the body; the
/// headers' bytes are pairs (`header_pairs`), passed as `tg_header`s (NULL: the array pointer is NULL).
/// The status is a tg_status value; 200 exactly when the input is valid (topic with a schema, UTF-8
/// body prost-reflect reads as that message, headers with UTF-8 names within the limits, key
/// within its limit); 200 answers partition/offset -1 and an empty message; an error message is
/// NUL-terminated inside the buffer and echoes no string value of the body.
pub fn check_ffi_publish(data: &[u8]) {
    let fx = publish_fixture();
    let [flags, buf_len, ref rest @ ..] = *data else { return };
    let mut rest = rest;
    let topic = length_prefixed(&mut rest);
    let headers = length_prefixed(&mut rest);
    let key = length_prefixed(&mut rest);
    let json = rest;
    let null = |bit: u8| flags & (1 << bit) != 0;
    let ptr = |bit: u8, bytes: &[u8]| if null(bit) { std::ptr::null() } else { bytes.as_ptr() };
    let pairs = header_pairs(headers);
    let raw: Vec<tg_header> = pairs
        .iter()
        .map(|(n, v)| tg_header { name: n.as_ptr(), name_len: n.len(), value: v.as_ptr(), value_len: v.len() })
        .collect();
    let raw_ptr = if null(1) { std::ptr::null() } else { raw.as_ptr() };

    // Publishes `body` with this input's topic, headers and key.
    let publish = |body: &[u8], errbuf_ptr: *mut std::ffi::c_char, errbuf_len: usize, delivery_ptr| unsafe {
        tg_publish(
            fx.publisher as *const tg_publisher,
            ptr(0, topic),
            topic.len(),
            ptr(3, body),
            body.len(),
            raw_ptr,
            raw.len(),
            ptr(2, key),
            key.len(),
            delivery_ptr,
            errbuf_ptr,
            errbuf_len,
        )
    };
    let mut errbuf = vec![0x55u8; usize::from(buf_len)];
    let errbuf_ptr = if null(4) { std::ptr::null_mut() } else { errbuf.as_mut_ptr().cast() };
    let mut delivery = tg_delivery { partition: 7, offset: 7 };
    let delivery_ptr: *mut tg_delivery = if null(5) { std::ptr::null_mut() } else { &mut delivery };
    let status = publish(json, errbuf_ptr, errbuf.len(), delivery_ptr);
    assert!(STATUSES.contains(&(status as i32)), "status {}", status as i32);

    let desc = match (null(0), topic) {
        (false, b"Everything") => Some(&fx.everything),
        (false, b"Small") => Some(&fx.small),
        _ => None,
    };
    let valid = desc.is_some_and(|d| !null(3) && valid_body(d, json))
        && (if null(1) { raw.is_empty() } else { valid_headers(&pairs) })
        && (null(2) || key.len() <= PUBLISH_MAX_KEY_BYTES);
    // prost-reflect keeps the last of two equal keys, the core refuses them (and a JSON name with
    // the proto name of the same field, when its direct writer reads the body): with a possible
    // duplicate only a 400 instead of a 200 is allowed.
    let refused_duplicate = status == tg_status::BadRequest && maybe_duplicate_keys(json);
    if !(valid && refused_duplicate) {
        assert_eq!(status == tg_status::Ok, valid, "status {} for valid={valid}", status as i32);
    }

    // Started without waiting, the same input gets the same status; on 200 its one completion is
    // ready at once (dry run) with the token, partition/offset -1 and no message.
    let starter = starting_publisher();
    let token = u64::from(flags) << 8 | u64::from(buf_len);
    let started = unsafe {
        tg_publish_start(
            starter,
            ptr(0, topic),
            topic.len(),
            ptr(3, json),
            json.len(),
            raw_ptr,
            raw.len(),
            ptr(2, key),
            key.len(),
            -1,
            -1,
            token,
            std::ptr::null_mut(),
            0,
        )
    };
    assert_eq!(started, status, "tg_publish_start and tg_publish disagree");
    // SAFETY: tg_completion is plain data; all zeroes is a valid value.
    let mut done: [tg_completion; 2] = unsafe { std::mem::zeroed() };
    let mut count = usize::MAX;
    let polled = unsafe { tg_publisher_completions(starter, done.as_mut_ptr(), done.len(), &mut count, 0) };
    assert_eq!((polled, count), (tg_status::Ok, usize::from(status == tg_status::Ok)));
    if count == 1 {
        let c = &done[0];
        assert_eq!((c.token, c.status), (token, tg_status::Ok));
        assert_eq!((c.delivery.partition, c.delivery.offset, c.message[0]), (-1, -1, 0));
    }

    let message = buffer_message(&errbuf, null(4));
    if status == tg_status::Ok {
        if !null(5) {
            assert_eq!((delivery.partition, delivery.offset), (-1, -1));
        }
        assert!(message.is_none_or(str::is_empty), "message on 200: {message:?}");
    } else if let Some(message) = message {
        assert!(!message.is_empty() || errbuf.len() == 1, "empty error message");
        // Only a message that fits whole can be searched for a whole literal.
        if let (Ok(body), true) = (std::str::from_utf8(json), message.len() + 1 < errbuf.len()) {
            let rerun = |changed: &str| {
                let mut buf = vec![0u8; 4096];
                let status = publish(changed.as_bytes(), buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut());
                (status != tg_status::Ok).then(|| buffer_message(&buf, false).unwrap_or_default().to_owned())
            };
            assert_no_value_echo(message, body, rerun);
        }
    }
}
