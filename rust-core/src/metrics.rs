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

/// Schema cache outcomes since the process started.
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

/// The process's schema cache counters.
pub static SCHEMA: LazyLock<SchemaCounters> = LazyLock::new(SchemaCounters::default);

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
    /// The version in use and when the registry last gave (or confirmed) it.
    fetched: Mutex<(Option<i64>, Instant)>,
}

/// Cached schemas' states; an entry dies with its cache entry.
static CACHED_SCHEMAS: LazyLock<Mutex<Vec<Weak<CachedSchemaState>>>> = LazyLock::new(Default::default);

impl CachedSchemaState {
    /// A new, registered state for schema `name`, fetched just now at `version` (`None` for a file).
    pub fn register(name: &str, version: Option<i64>) -> Arc<CachedSchemaState> {
        let state =
            Arc::new(CachedSchemaState { name: name.to_owned(), fetched: Mutex::new((version, Instant::now())) });
        let mut all = CACHED_SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&state));
        state
    }

    /// The registry gave (or confirmed) the schema again just now; `version` is the one now in use.
    pub fn fetched(&self, version: Option<i64>) {
        *self.fetched.lock().unwrap_or_else(|p| p.into_inner()) = (version, Instant::now());
    }

    fn snapshot(&self) -> CachedSchema {
        let (version, at) = *self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        CachedSchema { name: self.name.clone(), version, age_seconds: at.elapsed().as_millis() as f64 / 1000.0 }
    }
}

/// A cached schema as the snapshot shows it.
#[derive(Debug, Serialize)]
pub struct CachedSchema {
    /// Schema name in its registry.
    pub name: String,
    /// The registry's version number (Glue), `null` for a file.
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

#[derive(Debug, Serialize)]
struct SchemaSnapshot {
    hits: u64,
    misses: u64,
    stale_served: u64,
    fetches: u64,
    fetch_failures: u64,
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
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
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
    let snapshot = Snapshot {
        schema: SchemaSnapshot {
            hits: load(&SCHEMA.hits),
            misses: load(&SCHEMA.misses),
            stale_served: load(&SCHEMA.stale_served),
            fetches: load(&SCHEMA.fetches),
            fetch_failures: load(&SCHEMA.fetch_failures),
            cached,
        },
        delivery_errors,
        producers,
    };
    serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
