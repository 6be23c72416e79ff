//! Finds whether a record whose publish ended with no known outcome (a `504`) was written after
//! all (issue #21, `Idempotency-Key`): the gateway retries such a key only after searching the
//! topic for the record header that carries the key. One [`Reader`] per publisher, made on first
//! use and used by one search at a time (a reader is assigned the partitions it reads).

use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
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

/// The idempotency log shared by gateway replicas (issue #21, step 2; not yet used by the
/// plugin): a Kafka topic where each replica appends, under a record key naming route, topic and
/// `Idempotency-Key`, its intent to serve a request and later its answer. Every record of a key
/// goes to one partition, so its offsets order them the same for every replica: the earliest
/// intent wins. Each log follows the whole topic from `now − window` (one consumer, no group:
/// [`Reader::follow`]) into memory, so that a replica, once its tail has read past its own
/// intent ([`IntentLog::wait_read`]), sees every earlier record of the key.
pub struct IntentLog {
    producer: std::sync::Arc<crate::producer::Producer>,
    topic: String,
    shared: std::sync::Arc<Shared>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tail: Option<std::thread::JoinHandle<()>>,
}

/// What the tail has read, and a condition to wait for more.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct State {
    by_key: std::collections::HashMap<Vec<u8>, Vec<LogRecord>>,
    /// Per partition, the offset the tail has read up to (exclusive).
    read_to: std::collections::HashMap<i32, i64>,
}

/// How long the tail waits before it tries again after a failure (topic missing, cluster down).
const TAIL_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

impl IntentLog {
    /// Opens the log on `topic` of the cluster `config` produces to, following it from
    /// `now − window`. The topic must exist or be created by the first append (the broker's
    /// auto-creation): the tail waits for it. Partitions added later are not followed.
    pub fn open(config: &Config, topic: &str, window: std::time::Duration) -> Result<IntentLog> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let producer = crate::producer::Producer::shared(
            &config.producer_properties()?,
            config.delivery_timeout(),
            config.kafka.auth.as_ref(),
        )?;
        let reader = Reader::new(config)?;
        let shared = std::sync::Arc::new(Shared::default());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let since = now_ms() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        let (t, sh, st) = (topic.to_owned(), shared.clone(), stop.clone());
        let tail = std::thread::Builder::new()
            .name("topicgate-idemlog".to_owned())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    // Where each partition's reading stopped, or from `since` for a partition
                    // not read yet (the first time, or the topic appeared since).
                    let read_to = sh.state.lock().unwrap_or_else(|p| p.into_inner()).read_to.clone();
                    let from = reader.partitions(&t).and_then(|ps| {
                        let missing: Vec<i32> = ps.iter().copied().filter(|p| !read_to.contains_key(p)).collect();
                        let mut from: Vec<(i32, i64)> = read_to.iter().map(|(&p, &o)| (p, o)).collect();
                        from.extend(reader.offsets_at(&t, &missing, since)?);
                        Ok(from)
                    });
                    let from = match from {
                        Ok(from) => from,
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
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.tail.take() {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
