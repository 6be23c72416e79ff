//! Counters and gauges the core keeps for the host to export (`tg_metrics_json`): schema cache
//! outcomes, failed deliveries by error kind and status, and each producer's state from librdkafka's statistics.
//!
//! The publish path only adds to atomics here (a schema's first fetch also registers it); everything
//! else (reading the cached schemas' and the producers' last reported states, building JSON) happens
//! when the host asks for a snapshot. The schema cache and the producers report here, never the
//! other way round, so that the metrics know neither's insides.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Status;

/// The kind of registry a schema comes from: the `registry` label of the schema metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    /// AWS Glue Schema Registry.
    Glue = 0,
    /// A directory of schema files.
    File = 1,
    /// A Confluent-compatible Schema Registry.
    Confluent = 2,
}

impl RegistryKind {
    const ALL: [RegistryKind; 3] = [RegistryKind::Glue, RegistryKind::File, RegistryKind::Confluent];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            RegistryKind::Glue => "glue",
            RegistryKind::File => "file",
            RegistryKind::Confluent => "confluent",
        }
    }
}

/// A schema's format: the `format` label of the schema metrics. `Unknown` is for what happened
/// before the registry told the format (a miss that failed, a first fetch the registry did not answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatLabel {
    /// Protobuf.
    Protobuf = 0,
    /// Avro.
    Avro = 1,
    /// JSON Schema.
    Json = 2,
    /// Not known (yet).
    Unknown = 3,
}

impl FormatLabel {
    const ALL: [FormatLabel; 4] = [FormatLabel::Protobuf, FormatLabel::Avro, FormatLabel::Json, FormatLabel::Unknown];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            FormatLabel::Protobuf => "protobuf",
            FormatLabel::Avro => "avro",
            FormatLabel::Json => "json",
            FormatLabel::Unknown => "unknown",
        }
    }
}

/// Schema cache outcomes since the process started, of one registry kind and format.
#[derive(Debug, Default)]
pub struct SchemaCounters {
    /// Lookups answered from the cache with a fresh schema.
    pub hits: AtomicU64,
    /// Lookups that had to fetch the schema (nothing cached).
    pub misses: AtomicU64,
    /// Lookups answered from the cache with a schema whose refresh was due.
    pub stale_served: AtomicU64,
    /// Fetches from the registry (first fetches and background refreshes).
    pub fetches: AtomicU64,
    /// Fetches that failed (registry unreachable, refused, or a schema that does not compile).
    pub fetch_failures: AtomicU64,
}

/// The counters by registry kind and format: a fixed table (3 × 4), so the labels' cardinality is
/// bounded and the publish path only adds to an atomic.
static SCHEMA: LazyLock<[[SchemaCounters; 4]; 3]> = LazyLock::new(Default::default);

/// The schema cache counters of `registry` and `format`.
pub fn schema_counters(registry: RegistryKind, format: FormatLabel) -> &'static SchemaCounters {
    &SCHEMA[registry as usize][format as usize]
}

/// Failed deliveries by (error kind, status answered). Only a failed delivery takes this
/// lock, never a successful publish; the key set is bounded by librdkafka's error codes.
static DELIVERY_ERRORS: LazyLock<Mutex<BTreeMap<(String, u16), u64>>> = LazyLock::new(Default::default);

/// Counts a record the broker did not acknowledge: `kind` names the librdkafka error of its delivery
/// report (e.g. `MessageTimedOut`), `status` is what it was answered with.
pub fn count_delivery_error(kind: &str, status: Status) {
    let mut errors = DELIVERY_ERRORS.lock().unwrap_or_else(|p| p.into_inner());
    *errors.entry((kind.to_owned(), status.code())).or_default() += 1;
}

/// One producer's state as its last librdkafka statistics told it (`statistics.interval.ms`).
#[derive(Debug)]
pub struct ProducerState {
    /// Numbers producers in the order they were created (one per distinct `kafka` config).
    pub id: u64,
    /// The brokers it was configured with, to name it in readiness answers.
    pub bootstrap: String,
    stats_at: Mutex<Option<Instant>>,
    queue_messages: AtomicI64,
    queue_bytes: AtomicI64,
    brokers: AtomicI64,
    brokers_up: AtomicI64,
    retries: AtomicI64,
    request_errors: AtomicI64,
}

/// Live producers' states; an entry dies with its producer.
static PRODUCERS: LazyLock<Mutex<Vec<Weak<ProducerState>>>> = LazyLock::new(Default::default);

impl ProducerState {
    /// A new, registered state for a producer of `bootstrap`.
    pub fn register(bootstrap: &str) -> Arc<ProducerState> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let state = Arc::new(ProducerState {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            bootstrap: bootstrap.to_owned(),
            stats_at: Mutex::new(None),
            queue_messages: AtomicI64::new(0),
            queue_bytes: AtomicI64::new(0),
            brokers: AtomicI64::new(0),
            brokers_up: AtomicI64::new(0),
            retries: AtomicI64::new(0),
            request_errors: AtomicI64::new(0),
        });
        let mut all = PRODUCERS.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&state));
        state
    }

    /// Takes in one librdkafka statistics report, its JSON as librdkafka writes it: only the few
    /// numbers shown are read (into [`Stats`]); the rest of the document, per topic and partition
    /// the larger part, is skipped, not decoded.
    pub fn update_from_json(&self, json: &[u8]) -> serde_json::Result<()> {
        let stats: Stats = serde_json::from_slice(json)?;
        // The brokers from the bootstrap list ("configured") and those learnt from metadata; not
        // librdkafka's internal and logical ones, which never connect. librdkafka connects sparsely:
        // an idle producer may hold its only connection through a bootstrap entry.
        let brokers: Vec<_> =
            stats.brokers.values().filter(|b| b.source == "configured" || b.source == "learned").collect();
        self.queue_messages.store(stats.msg_cnt as i64, Ordering::Relaxed);
        self.queue_bytes.store(stats.msg_size as i64, Ordering::Relaxed);
        self.brokers.store(brokers.len() as i64, Ordering::Relaxed);
        self.brokers_up.store(brokers.iter().filter(|b| b.state == "UP").count() as i64, Ordering::Relaxed);
        self.retries.store(brokers.iter().map(|b| b.txretries as i64).sum(), Ordering::Relaxed);
        self.request_errors.store(brokers.iter().map(|b| (b.txerrs + b.rxerrs) as i64).sum(), Ordering::Relaxed);
        *self.stats_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn snapshot(&self) -> ProducerSnapshot {
        let at = *self.stats_at.lock().unwrap_or_else(|p| p.into_inner());
        ProducerSnapshot {
            id: self.id,
            bootstrap: self.bootstrap.clone(),
            stats_age_seconds: at.map(|t| t.elapsed().as_secs_f64()),
            queue_messages: self.queue_messages.load(Ordering::Relaxed),
            queue_bytes: self.queue_bytes.load(Ordering::Relaxed),
            brokers: self.brokers.load(Ordering::Relaxed),
            brokers_up: self.brokers_up.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            request_errors: self.request_errors.load(Ordering::Relaxed),
        }
    }
}

/// What the metrics read of a librdkafka statistics report (its STATISTICS.md names the fields).
#[derive(Deserialize)]
struct Stats {
    /// Records in the producer's queues.
    msg_cnt: u64,
    /// Their bytes.
    msg_size: u64,
    #[serde(default)]
    brokers: BTreeMap<String, BrokerStats>,
}

/// What the metrics read of one broker's statistics.
#[derive(Deserialize)]
struct BrokerStats {
    /// `configured`, `learned`, `internal` or `logical`.
    source: String,
    /// `UP`, `DOWN`, `INIT`, …
    state: String,
    #[serde(default)]
    txretries: u64,
    #[serde(default)]
    txerrs: u64,
    #[serde(default)]
    rxerrs: u64,
}

/// One cached schema's state as the schema cache reports it.
#[derive(Debug)]
pub struct CachedSchemaState {
    name: String,
    registry: RegistryKind,
    /// The version in use, its format and when the registry last gave (or confirmed) it.
    fetched: Mutex<(Option<i64>, FormatLabel, Instant)>,
}

/// Cached schemas' states; an entry dies with its cache entry.
static CACHED_SCHEMAS: LazyLock<Mutex<Vec<Weak<CachedSchemaState>>>> = LazyLock::new(Default::default);

impl CachedSchemaState {
    /// A new, registered state for schema `name` of a `registry`, fetched just now at `version`
    /// (`None` for a file) in `format`.
    pub fn register(
        name: &str,
        registry: RegistryKind,
        version: Option<i64>,
        format: FormatLabel,
    ) -> Arc<CachedSchemaState> {
        let state = Arc::new(CachedSchemaState {
            name: name.to_owned(),
            registry,
            fetched: Mutex::new((version, format, Instant::now())),
        });
        let mut all = CACHED_SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&state));
        state
    }

    /// The registry gave (or confirmed) the schema again just now; `version` and `format` are
    /// those now in use.
    pub fn fetched(&self, version: Option<i64>, format: FormatLabel) {
        *self.fetched.lock().unwrap_or_else(|p| p.into_inner()) = (version, format, Instant::now());
    }

    fn snapshot(&self) -> CachedSchema {
        let (version, format, at) = *self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        CachedSchema {
            name: self.name.clone(),
            registry: self.registry.label(),
            format: format.label(),
            version,
            age_seconds: at.elapsed().as_millis() as f64 / 1000.0,
        }
    }
}

/// A cached schema as the snapshot shows it.
#[derive(Debug, Serialize)]
pub struct CachedSchema {
    /// Schema name in its registry.
    pub name: String,
    /// The registry kind (`glue`, `file`, `confluent`).
    pub registry: &'static str,
    /// The schema's format (`protobuf`, `avro`, `json`).
    pub format: &'static str,
    /// The registry's version number (Glue, Confluent), `null` for a file.
    pub version: Option<i64>,
    /// Seconds since it was fetched (or last confirmed unchanged by a refresh).
    pub age_seconds: f64,
}

#[derive(Debug, Serialize)]
struct ProducerSnapshot {
    id: u64,
    bootstrap: String,
    /// Seconds since the last statistics report; `null` before the first.
    stats_age_seconds: Option<f64>,
    queue_messages: i64,
    queue_bytes: i64,
    brokers: i64,
    brokers_up: i64,
    retries: i64,
    request_errors: i64,
}

#[derive(Debug, Default, Serialize)]
struct SchemaCounts {
    hits: u64,
    misses: u64,
    stale_served: u64,
    fetches: u64,
    fetch_failures: u64,
}

impl SchemaCounts {
    fn of(c: &SchemaCounters) -> SchemaCounts {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SchemaCounts {
            hits: load(&c.hits),
            misses: load(&c.misses),
            stale_served: load(&c.stale_served),
            fetches: load(&c.fetches),
            fetch_failures: load(&c.fetch_failures),
        }
    }

    fn add(&mut self, o: &SchemaCounts) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.stale_served += o.stale_served;
        self.fetches += o.fetches;
        self.fetch_failures += o.fetch_failures;
    }

    fn is_zero(&self) -> bool {
        self.hits + self.misses + self.stale_served + self.fetches + self.fetch_failures == 0
    }
}

/// One registry kind and format's counters (listed only once one of them is not zero).
#[derive(Debug, Serialize)]
struct SchemaSource {
    registry: &'static str,
    format: &'static str,
    #[serde(flatten)]
    counts: SchemaCounts,
}

#[derive(Debug, Serialize)]
struct SchemaSnapshot {
    /// The sums over every registry kind and format.
    #[serde(flatten)]
    totals: SchemaCounts,
    by_source: Vec<SchemaSource>,
    cached: Vec<CachedSchema>,
}

#[derive(Debug, Serialize)]
struct DeliveryErrors {
    kind: String,
    status: u16,
    count: u64,
}

#[derive(Debug, Serialize)]
struct Snapshot {
    schema: SchemaSnapshot,
    /// Failed deliveries by error kind and HTTP status (none with a zero count).
    delivery_errors: Vec<DeliveryErrors>,
    producers: Vec<ProducerSnapshot>,
}

/// Everything above as one JSON document (the format of `tg_metrics_json`).
pub fn snapshot_json() -> String {
    let producers = PRODUCERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .map(|p| p.snapshot())
        .collect();
    let delivery_errors = DELIVERY_ERRORS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((kind, status), &count)| DeliveryErrors { kind: kind.clone(), status: *status, count })
        .collect();
    let mut cached: Vec<_> = CACHED_SCHEMAS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .map(|s| s.snapshot())
        .collect();
    cached.sort_by(|a, b| a.name.cmp(&b.name));
    let mut totals = SchemaCounts::default();
    let mut by_source = Vec::new();
    for registry in RegistryKind::ALL {
        for format in FormatLabel::ALL {
            let counts = SchemaCounts::of(schema_counters(registry, format));
            if !counts.is_zero() {
                totals.add(&counts);
                by_source.push(SchemaSource { registry: registry.label(), format: format.label(), counts });
            }
        }
    }
    let snapshot = Snapshot { schema: SchemaSnapshot { totals, by_source, cached }, delivery_errors, producers };
    serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_counters_are_listed_by_registry_and_format_once_they_move() {
        schema_counters(RegistryKind::Confluent, FormatLabel::Avro).hits.fetch_add(3, Ordering::Relaxed);
        schema_counters(RegistryKind::Glue, FormatLabel::Unknown).fetch_failures.fetch_add(1, Ordering::Relaxed);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json()).unwrap();
        let sources = v["schema"]["by_source"].as_array().unwrap();
        let row = |registry: &str, format: &str| {
            sources.iter().find(|s| s["registry"] == registry && s["format"] == format).cloned()
        };
        assert!(row("confluent", "avro").unwrap()["hits"].as_u64().unwrap() >= 3, "{v}");
        assert!(row("glue", "unknown").unwrap()["fetch_failures"].as_u64().unwrap() >= 1, "{v}");
        // Only combinations that moved are listed; the totals sum them.
        assert!(sources.iter().all(|s| ["hits", "misses", "stale_served", "fetches", "fetch_failures"]
            .iter()
            .any(|k| s[k].as_u64().unwrap() > 0)));
        let total: u64 = sources.iter().map(|s| s["hits"].as_u64().unwrap()).sum();
        assert_eq!(v["schema"]["hits"].as_u64().unwrap(), total, "{v}");
        let s = CachedSchemaState::register("m-value", RegistryKind::Confluent, Some(2), FormatLabel::Json);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json()).unwrap();
        let cached = v["schema"]["cached"].as_array().unwrap().iter().find(|c| c["name"] == "m-value").cloned();
        let cached = cached.expect("listed");
        assert_eq!((cached["registry"].as_str(), cached["format"].as_str()), (Some("confluent"), Some("json")));
        drop(s);
    }

    #[test]
    fn snapshot_counts_delivery_errors_by_kind_and_status_and_lists_live_producers() {
        count_delivery_error("MessageTimedOut", Status::Timeout);
        count_delivery_error("MessageTimedOut", Status::Timeout);
        count_delivery_error("MessageTimedOut", Status::Unavailable);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json()).unwrap();
        let count = |status: u64| {
            v["delivery_errors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == "MessageTimedOut" && e["status"] == status)
                .map_or(0, |e| e["count"].as_u64().unwrap())
        };
        assert!(count(504) >= 2 && count(503) >= 1, "{v}");
        let p = ProducerState::register("metrics-test:9092");
        let v: serde_json::Value = serde_json::from_str(&snapshot_json()).unwrap();
        let mine = |v: &serde_json::Value| {
            v["producers"].as_array().unwrap().iter().any(|p| p["bootstrap"] == "metrics-test:9092")
        };
        assert!(mine(&v), "{v}");
        drop(p);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json()).unwrap();
        assert!(!mine(&v), "a dropped producer is still listed: {v}");
    }
}
