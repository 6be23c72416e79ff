//! Finds whether a record whose publish ended with no known outcome (a `504`) was written after
//! all (issue #21, `Idempotency-Key`): the gateway retries such a key only after searching the
//! topic for the record header that carries the key. One [`Reader`] per publisher, made on first
//! use and used by one search at a time (a reader is assigned the partitions it reads).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::producer::Producer;
use crate::reader::{Followed, Reader};

/// Searches a topic for a record by a header value; see the module doc.
#[derive(Default)]
pub struct Finder {
    reader: Mutex<Option<Reader>>,
}

impl Finder {
    /// Where the first record of `topic` with a timestamp at or after `since_ms` and the header
    /// `name: value` was written, searched in every partition up to its end (`read_committed`),
    /// until `deadline`: `None` when there is none. A dry-run `config` writes nothing: `None`.
    pub fn find(
        &self,
        config: &Config,
        topic: &str,
        since_ms: i64,
        name: &str,
        value: &[u8],
        deadline: Instant,
    ) -> Result<Option<Delivery>> {
        if config.dry_run {
            return Ok(None);
        }
        if name.is_empty() {
            return Err(Error::bad_request("name: the header name is empty"));
        }
        let mut guard = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(Reader::new(config)?);
        }
        let reader = guard.as_ref().expect("made above");
        let found = reader.find_by_header(topic, since_ms, name, value, deadline)?;
        Ok(found.map(|r| Delivery { partition: r.partition, offset: r.offset }))
    }
}

/// A record of an [`IntentLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its partition of the log topic.
    pub partition: i32,
    /// Its offset there: the order of a key's records.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch), if it has one.
    pub timestamp_ms: Option<i64>,
    /// Its value (an intent or an answer, as the caller wrote it).
    pub value: Vec<u8>,
}

/// The idempotency log shared by gateway replicas (issue #21; the core option `idempotency`): a
/// Kafka topic where each replica appends, under a record key naming route, topic and
/// `Idempotency-Key`, its intent to serve a request and later its answer. Every record of a key
/// goes to one partition, so its offsets order them the same for every replica: the earliest
/// intent wins. Each log follows the whole topic from `now − window` (one consumer, no group:
/// [`Reader::follow`]) into memory, so that a replica, once its tail has read past its own
/// intent ([`IntentLog::wait_read`]), sees every earlier record of the key. Records older than
/// the window are dropped from memory. The topic's partitions are those it has when the tail
/// first reads it: partitions added later are not followed (a key's partition would change
/// anyway, splitting its records), so its partition count is fixed at creation.
pub struct IntentLog {
    producer: Arc<Producer>,
    topic: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    tail: Option<JoinHandle<()>>,
}

/// What the tail has read, and a condition to wait for more.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    by_key: HashMap<Vec<u8>, Vec<LogRecord>>,
    /// Per partition, the offset the tail has read up to (exclusive).
    read_to: HashMap<i32, i64>,
    /// When records older than the window were last dropped (epoch milliseconds).
    pruned_ms: i64,
}

impl State {
    /// Drops the keys whose newest record is older than `oldest_ms`, at most once per
    /// `every_ms`: memory holds the window, not the topic's whole retention.
    fn prune(&mut self, now_ms: i64, oldest_ms: i64, every_ms: i64) {
        if now_ms - self.pruned_ms < every_ms {
            return;
        }
        self.pruned_ms = now_ms;
        self.by_key.retain(|_, recs| recs.iter().any(|r| r.timestamp_ms.is_none_or(|t| t >= oldest_ms)));
    }
}

/// How long the tail waits before it tries again after a failure (topic missing, cluster down).
const TAIL_RETRY: Duration = Duration::from_millis(500);

impl IntentLog {
    /// Opens the log on `topic` of the cluster `config` produces to, following it from
    /// `now − window`. The tail creates the topic first if it is missing (delete retention of
    /// the window, the cluster's default partitions and replication factor), retrying until the
    /// cluster answers; until then appends fail and nothing is read.
    pub fn open(config: &Config, topic: &str, window: Duration) -> Result<IntentLog> {
        let producer =
            Producer::shared(&config.producer_properties()?, config.delivery_timeout(), config.kafka.auth.as_ref())?;
        let reader = Reader::new(config)?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4);
        let since = now_ms() - window_ms;
        let every_ms = (window_ms / 10).clamp(1000, 60_000);
        let (t, sh, st, cfg) = (topic.to_owned(), shared.clone(), stop.clone(), config.clone());
        let tail = std::thread::Builder::new()
            .name("topicgate-idemlog".to_owned())
            .spawn(move || {
                let mut created = false;
                while !st.load(Ordering::Relaxed) {
                    if !created {
                        match create_topic(&cfg, &t, window_ms) {
                            Ok(()) => created = true,
                            Err(e) => {
                                log::warn!(target: "topicgate::kafka", "idempotency log {t}: cannot create it: {e}");
                                std::thread::sleep(TAIL_RETRY);
                                continue;
                            }
                        }
                    }
                    // Where each partition's reading stopped, or from `since` for a partition
                    // not read yet (the first time).
                    let read_to = sh.state.lock().unwrap_or_else(|p| p.into_inner()).read_to.clone();
                    let from = reader.partitions(&t).and_then(|ps| {
                        let missing: Vec<i32> = ps.iter().copied().filter(|p| !read_to.contains_key(p)).collect();
                        let mut from: Vec<(i32, i64)> = read_to.iter().map(|(&p, &o)| (p, o)).collect();
                        if read_to.is_empty() {
                            from.extend(reader.offsets_at(&t, &missing, since)?);
                        }
                        Ok(from)
                    });
                    let from = match from {
                        Ok(from) if !from.is_empty() => from,
                        Ok(_) => {
                            std::thread::sleep(TAIL_RETRY);
                            continue;
                        }
                        Err(e) => {
                            log::debug!(target: "topicgate::kafka", "idempotency log {t}: {e}");
                            std::thread::sleep(TAIL_RETRY);
                            continue;
                        }
                    };
                    let followed = reader.follow(&t, &from, &st, |ev| {
                        let mut state = sh.state.lock().unwrap_or_else(|p| p.into_inner());
                        match ev {
                            Followed::Record(r) => {
                                state.read_to.insert(r.partition, r.offset + 1);
                                let rec = LogRecord {
                                    partition: r.partition,
                                    offset: r.offset,
                                    timestamp_ms: r.timestamp_ms,
                                    value: r.value.unwrap_or_default(),
                                };
                                state.by_key.entry(r.key.unwrap_or_default()).or_default().push(rec);
                            }
                            Followed::Caught(p, o) => {
                                state.read_to.insert(p, o);
                            }
                        }
                        let now = now_ms();
                        state.prune(now, now - window_ms, every_ms);
                        sh.changed.notify_all();
                    });
                    if let Err(e) = followed {
                        log::warn!(target: "topicgate::kafka", "idempotency log {t}: {e}; following it again");
                        std::thread::sleep(TAIL_RETRY);
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the idempotency log's thread: {e}")))?;
        Ok(IntentLog { producer, topic: topic.to_owned(), shared, stop, tail: Some(tail) })
    }

    /// Appends `value` under `key` and waits for the broker's acknowledgement: its partition
    /// and offset.
    pub fn append(&self, key: &[u8], value: &[u8]) -> Result<Delivery> {
        self.producer.send(&self.topic, value, Some(key), &[])
    }

    /// Waits until the tail has read `partition` past `offset`, or `deadline`: whether it has.
    pub fn wait_read(&self, partition: i32, offset: i64, deadline: Instant) -> bool {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.read_to.get(&partition).is_some_and(|&o| o > offset) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Waits until the number of `key`'s records read differs from `seen` (another replica's
    /// answer or intent came in, or old ones were dropped), or `deadline`: whether it does.
    pub fn wait_key(&self, key: &[u8], seen: usize, deadline: Instant) -> bool {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.by_key.get(key).map_or(0, Vec::len) != seen {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The records of `key` read so far, in offset order.
    pub fn records(&self, key: &[u8]) -> Vec<LogRecord> {
        let state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = state.by_key.get(key).cloned().unwrap_or_default();
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

impl Drop for IntentLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.tail.take() {
            let _ = t.join();
        }
    }
}

/// Creates `topic` unless it exists: delete retention of at least the window, the cluster's
/// default partition count and replication factor (-1: the broker's `num.partitions` and
/// `default.replication.factor`).
fn create_topic(config: &Config, topic: &str, window_ms: i64) -> Result<()> {
    let (cc, context) = crate::reader::client_config(config)?;
    let admin = AdminClient::from_config_and_context(&cc, context)
        .map_err(|e| Error::bad_request(format!("config: kafka.properties (admin): {e}")))?;
    let retention = window_ms.to_string();
    let new = NewTopic::new(topic, -1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", &retention);
    let opts = AdminOptions::new().operation_timeout(Some(config.delivery_timeout()));
    // The tail's own thread, never a runtime's: it may block on the core's runtime.
    let results = crate::runtime::handle()?
        .block_on(admin.create_topics([&new], &opts))
        .map_err(|e| Error::unavailable(format!("create topic: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(Error::unavailable(format!("create topic {topic}: {code}"))),
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: Option<i64>) -> LogRecord {
        LogRecord { partition: 0, offset: 0, timestamp_ms: ts, value: Vec::new() }
    }

    #[test]
    fn prune_drops_keys_older_than_the_window_at_most_once_per_period() {
        let mut state = State::default();
        state.by_key.insert(b"old".to_vec(), vec![rec(Some(100))]);
        state.by_key.insert(b"mixed".to_vec(), vec![rec(Some(100)), rec(Some(5000))]);
        state.by_key.insert(b"untimed".to_vec(), vec![rec(None)]);
        state.prune(10_000, 1000, 1000);
        let mut keys: Vec<_> = state.by_key.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec![b"mixed".to_vec(), b"untimed".to_vec()]);
        // Within the period nothing is pruned, even what is now out of the window.
        state.prune(10_500, 6000, 1000);
        assert!(state.by_key.contains_key(b"mixed".as_slice()));
        state.prune(11_000, 6000, 1000);
        assert!(!state.by_key.contains_key(b"mixed".as_slice()));
    }
}
