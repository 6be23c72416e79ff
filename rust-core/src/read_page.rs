//! A page of a topic read over HTTP (issue #22): positions in, decoded records and the next
//! positions out. Stateless: the positions are the whole state, so any replica serves any page.

use crate::decoding::Other;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::publisher::Publisher;
use crate::reader::{Range, ReadRecord, Reader};

/// The most records one page holds, whatever the request asks.
pub const MAX_PAGE_RECORDS: usize = 1000;
/// The longest a page waits for a first record.
pub const MAX_WAIT_MS: u64 = 30_000;
/// How often an empty long poll looks again.
const POLL_AGAIN: Duration = Duration::from_millis(100);

/// What to read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageRequest {
    /// The topic.
    pub topic: String,
    /// The partitions to read (`None`: all of the topic's).
    #[serde(default)]
    pub partitions: Option<Vec<i32>>,
    /// Exact positions (the next offset to read) of some partitions; the others start at `start`.
    #[serde(default)]
    pub offsets: BTreeMap<i32, i64>,
    /// Where partitions without a position start: `earliest`, `latest` or `timestamp:<ms>`.
    #[serde(default = "latest")]
    pub start: String,
    /// The most records to answer (at most [`MAX_PAGE_RECORDS`]).
    pub limit: usize,
    /// How long to wait for a first record when there is none yet (at most [`MAX_WAIT_MS`]).
    #[serde(default)]
    pub wait_ms: u64,
    /// Put an undecodable value's bytes in its error entry, as base64.
    #[serde(default)]
    pub raw_on_error: bool,
}

fn latest() -> String {
    "latest".to_owned()
}

/// Readers kept between pages, so a page does not open a Kafka connection; at most `max` idle.
pub struct ReaderPool {
    config: Config,
    idle: Mutex<Vec<Reader>>,
    max: usize,
}

impl ReaderPool {
    /// A pool of readers of `config`'s cluster keeping at most `max` idle.
    pub fn new(config: &Config, max: usize) -> ReaderPool {
        ReaderPool { config: config.clone(), idle: Mutex::new(Vec::new()), max }
    }

    fn take(&self) -> Result<Reader> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(r) => Ok(r),
            None => Reader::new(&self.config),
        }
    }

    fn give(&self, reader: Reader) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max {
            idle.push(reader);
        }
    }
}

/// Reads one page: `{"records": [...], "next": {"<partition>": <offset>, ...}, "ends": {…}}`
/// (`ends`: each partition's high watermark as the page's fetches saw it), each record
/// `{partition, offset, timestamp, key, headers, value}` or with `error` in place of `value`.
pub fn read_page(publisher: &Publisher, pool: &ReaderPool, req: &PageRequest) -> Result<Value> {
    crate::publisher::check_topic(&req.topic)?;
    if req.limit == 0 || req.limit > MAX_PAGE_RECORDS {
        return Err(Error::bad_request(format!("limit: must be 1 to {MAX_PAGE_RECORDS}, got {}", req.limit)));
    }
    if req.wait_ms > MAX_WAIT_MS {
        return Err(Error::bad_request(format!("wait: at most {MAX_WAIT_MS} ms, got {}", req.wait_ms)));
    }
    // The schema first: a topic without one cannot be read, whatever Kafka holds.
    publisher.value_schema(&req.topic)?;
    let reader = pool.take()?;
    let result = (|| {
        let partitions = partitions_of(&reader, req)?;
        let mut next = positions(&reader, &req.topic, &partitions, &req.offsets, &req.start)?;
        let deadline = Instant::now() + Duration::from_millis(req.wait_ms);
        let mut records = Vec::new();
        loop {
            let ranges: Vec<Range> =
                next.iter().map(|(&partition, &from)| Range { partition, from, until: None }).collect();
            // A read ends at each partition's end as of its first fetch; bounded by the caller's wait
            // and the configured delivery timeout, so a broker away answers in time.
            let read_deadline = Instant::now() + Duration::from_millis(req.wait_ms.max(1000));
            reader.read(&req.topic, &ranges, read_deadline, |r| {
                next.insert(r.partition, r.offset + 1);
                records.push(r);
                records.len() < req.limit
            })?;
            if !records.is_empty() || Instant::now() + POLL_AGAIN >= deadline {
                break;
            }
            std::thread::sleep(POLL_AGAIN);
        }
        Ok(page(&reader, &req.topic, &next, entries(publisher, &req.topic, req.raw_on_error, &records)?))
    })();
    pool.give(reader);
    result
}

/// The partitions `req` reads: those it names (each checked to exist), else all of the topic's.
pub(crate) fn partitions_of(reader: &Reader, req: &PageRequest) -> Result<Vec<i32>> {
    let all = reader.partitions(&req.topic)?;
    match &req.partitions {
        None => Ok(all),
        Some(ps) => {
            if let Some(p) = ps.iter().find(|p| !all.contains(p)) {
                return Err(Error::bad_request(format!(
                    "partition: {p} does not exist; the topic has {} partitions",
                    all.len()
                )));
            }
            Ok(ps.clone())
        }
    }
}

/// A page's JSON: its entries, the positions after them and each partition's end as the
/// reader's fetches saw it (no extra request: what `next` is behind by).
pub(crate) fn page(reader: &Reader, topic: &str, next: &BTreeMap<i32, i64>, entries: Vec<Value>) -> Value {
    let ends: Map<String, Value> =
        next.keys().filter_map(|&p| reader.cached_end(topic, p).map(|e| (p.to_string(), Value::from(e)))).collect();
    let next: Map<String, Value> = next.iter().map(|(p, o)| (p.to_string(), Value::from(*o))).collect();
    json!({"records": entries, "next": next, "ends": ends})
}

/// Records read from `topic` as page entries, decoded with the topic's value (and key) schema;
/// records of another schema version or id are decoded with theirs.
pub(crate) fn entries(
    publisher: &Publisher,
    topic: &str,
    raw_on_error: bool,
    records: &[ReadRecord],
) -> Result<Vec<Value>> {
    let schema = publisher.value_schema(topic)?;
    let key_schema = publisher.key_schema(topic)?;
    let lookup = |other: Other, key: bool| {
        match other {
            Other::ConfluentId(id) => publisher.schema_by_confluent_id(id),
            Other::GlueVersion(v) => publisher.schema_by_glue_version(topic, v, key),
        }
        .map_err(|e| e.message)
    };
    let by_id = |other: Other| lookup(other, false);
    let key_by_id = |other: Other| lookup(other, true);
    let key_schema = key_schema.as_deref().map(|s| (s, &key_by_id as crate::decoding::ById<'_>));
    Ok(records.iter().map(|r| entry(r, &schema, &by_id, key_schema, raw_on_error)).collect())
}

/// Every partition's first offset to read: its given position (checked against its end), else `start`.
pub(crate) fn positions(
    reader: &Reader,
    topic: &str,
    partitions: &[i32],
    offsets: &BTreeMap<i32, i64>,
    start: &str,
) -> Result<BTreeMap<i32, i64>> {
    let mut out = BTreeMap::new();
    for (&p, &o) in offsets {
        if !partitions.contains(&p) {
            return Err(Error::bad_request(format!("offset: partition {p} is not among the partitions read")));
        }
        let end = reader.end_offset(topic, p)?;
        // Kafka would reset a position past the end to the start: refused instead.
        if o < 0 || o > end {
            return Err(Error::bad_request(format!("offset: {o} of partition {p} is outside 0..={end} (its end)")));
        }
        out.insert(p, o);
    }
    let rest: Vec<i32> = partitions.iter().copied().filter(|p| !offsets.contains_key(p)).collect();
    if rest.is_empty() {
        return Ok(out);
    }
    match start {
        "earliest" => out.extend(rest.iter().map(|&p| (p, 0))),
        "latest" => {
            for &p in &rest {
                out.insert(p, reader.end_offset(topic, p)?);
            }
        }
        other => {
            let ms =
                other.strip_prefix("timestamp:").and_then(|t| t.parse::<i64>().ok()).filter(|ms| *ms >= 0).ok_or_else(
                    || {
                        Error::bad_request(format!(
                            "start: `{other}` is not earliest, latest or a timestamp in milliseconds"
                        ))
                    },
                )?;
            out.extend(reader.offsets_at(topic, &rest, ms)?);
        }
    }
    Ok(out)
}

/// UTF-8 bytes as a string field, other bytes as `<name>_base64`.
fn bytes_field(out: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.insert(name.to_owned(), Value::String(s.to_owned())),
        Err(_) => out.insert(format!("{name}_base64"), Value::String(b64(bytes))),
    };
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One record as its page entry; a value that does not decode is an `error` naming where it is.
/// With `key_schema` (the core's `key_schema` and its lookup of other versions) the key is
/// decoded too; a key that does not decode stays bytes, with `key_error`.
fn entry(
    r: &ReadRecord,
    schema: &crate::schema::CompiledSchema,
    by_id: crate::decoding::ById<'_>,
    key_schema: Option<(&crate::schema::CompiledSchema, crate::decoding::ById<'_>)>,
    raw_on_error: bool,
) -> Value {
    let mut out = Map::new();
    out.insert("partition".into(), Value::from(r.partition));
    out.insert("offset".into(), Value::from(r.offset));
    out.insert("timestamp".into(), r.timestamp_ms.map_or(Value::Null, Value::from));
    match &r.key {
        None => {
            out.insert("key".into(), Value::Null);
        }
        Some(k) => match key_schema.map(|(ks, key_by_id)| crate::decoding::decode_value(k, ks, key_by_id)) {
            None => bytes_field(&mut out, "key", k),
            Some(Ok(v)) => {
                out.insert("key".into(), v);
            }
            Some(Err(e)) => {
                bytes_field(&mut out, "key", k);
                out.insert(
                    "key_error".into(),
                    Value::String(format!("partition {} offset {}: key: {e}", r.partition, r.offset)),
                );
            }
        },
    }
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|(name, value)| {
            let mut h = Map::new();
            h.insert("name".into(), Value::String(name.clone()));
            bytes_field(&mut h, "value", value);
            Value::Object(h)
        })
        .collect();
    out.insert("headers".into(), Value::Array(headers));
    match r.value.as_deref() {
        // A tombstone.
        None => {
            out.insert("value".into(), Value::Null);
        }
        Some(bytes) => match crate::decoding::decode_value(bytes, schema, by_id) {
            Ok(v) => {
                out.insert("value".into(), v);
            }
            Err(e) => {
                out.insert(
                    "error".into(),
                    Value::String(format!("partition {} offset {}: {e}", r.partition, r.offset)),
                );
                if raw_on_error {
                    out.insert("value_base64".into(), Value::String(b64(bytes)));
                }
            }
        },
    }
    Value::Object(out)
}
