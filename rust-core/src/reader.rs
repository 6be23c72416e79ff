//! Reads a topic's records back: the building block of the read side (issue #22) and of finding
//! whether a retried record was already written (issue #21, `Idempotency-Key`). A consumer with no
//! group is assigned partitions at chosen offsets and reads up to their end as of the first fetch
//! (`read_committed`: aborted transactions are skipped); it commits nothing, so nothing is left
//! on the cluster when it is dropped, and any replica can read from any position.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::producer::MskIam;

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch), if it has one.
    pub timestamp_ms: Option<i64>,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value, if any.
    pub value: Option<Vec<u8>>,
    /// Its headers in order, duplicates kept (a null value as empty).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where reading a partition starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The partition.
    pub partition: i32,
    /// The first offset to read.
    pub from: i64,
    /// The offset to stop before (`None`: the end as of the first fetch).
    pub until: Option<i64>,
}

/// A consumer that reads ranges of a topic's partitions; see the module doc.
pub struct Reader {
    consumer: BaseConsumer<ReaderContext>,
    /// Deadline of one metadata or offsets request.
    timeout: Duration,
}

/// The group id readers carry; never joined, never committed to.
const READER_GROUP: &str = "topicgate-reader";

/// Producer-only librdkafka properties of `kafka.properties` that a consumer would only warn about.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.type",
    "compression.level",
    "retries",
    "message.send.max.retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "partitioner",
    "sticky.partitioning.linger.ms",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "transactional.id",
    "transaction.timeout.ms",
    "queuing.strategy",
    "request.timeout.ms",
];

impl Reader {
    /// A reader of the cluster `config` produces to, with its security settings and its
    /// non-producer `kafka.properties`.
    pub fn new(config: &Config) -> Result<Reader> {
        Reader::with(config, &[])
    }

    /// [`Reader::new`] with librdkafka `defaults` that the user's `kafka.properties` may override.
    pub fn with(config: &Config, defaults: &[(&str, &str)]) -> Result<Reader> {
        let (mut cc, context) = client_config(config)?;
        for (k, v) in defaults {
            if !config.kafka.properties.contains_key(*k) {
                cc.set(*k, *v);
            }
        }
        let consumer = cc
            .create_with_context(context)
            .map_err(|e| Error::bad_request(format!("config: kafka.properties (reader): {e}")))?;
        Ok(Reader { consumer, timeout: config.delivery_timeout() })
    }

    /// The topic's partitions, in order.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        let md = self.consumer.fetch_metadata(Some(topic), self.timeout).map_err(|e| kafka_error("metadata", &e))?;
        let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| Error::not_found("topic not found"))?;
        if let Some(e) = t.error() {
            let code = RDKafkaErrorCode::from(e);
            return Err(match code {
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                    Error::not_found("topic does not exist on the Kafka cluster")
                }
                other => Error::unavailable(format!("metadata of topic {topic}: {other}")),
            });
        }
        let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ps.sort_unstable();
        Ok(ps)
    }

    /// For each partition, the offset of its first record with a timestamp at or after `ms`
    /// (Kafka's offsets-for-times), or its end offset when there is none.
    pub fn offsets_at(&self, topic: &str, partitions: &[i32], ms: i64) -> Result<Vec<(i32, i64)>> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(ms)).map_err(|e| kafka_error("offsets for times", &e))?;
        }
        let found =
            self.consumer.offsets_for_times(tpl, self.timeout).map_err(|e| kafka_error("offsets for times", &e))?;
        let mut out = Vec::with_capacity(partitions.len());
        for e in found.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                // No record at or after ms: start at the end.
                Offset::End | Offset::Invalid => self.end_offset(topic, e.partition())?,
                other => {
                    return Err(Error::internal(format!("offsets for times of {topic}/{}: {other:?}", e.partition())))
                }
            };
            out.push((e.partition(), offset));
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The partition's high watermark: the offset the next record will get.
    pub fn end_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        let (_, high) = self
            .consumer
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(|e| kafka_error("watermarks", &e))?;
        Ok(high)
    }

    /// The partition's high watermark as the reader's last fetch of it reported it: no network
    /// call, so a follower can tell its lag every round (`None` before any fetch of it answered).
    pub fn cached_end(&self, topic: &str, partition: i32) -> Option<i64> {
        let topic = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client lives as long as self; topic is a C string; low and high are writable.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
    }

    /// Reads `ranges` of `topic`, handing each record to `f` in offset order per partition, until
    /// every range is done, `f` answers false, or `deadline`. True when every range was read.
    pub fn read(
        &self,
        topic: &str,
        ranges: &[Range],
        deadline: Instant,
        mut f: impl FnMut(ReadRecord) -> bool,
    ) -> Result<bool> {
        let mut tpl = TopicPartitionList::new();
        let mut open: HashSet<i32> = HashSet::new();
        for r in ranges.iter().filter(|r| r.until.is_none_or(|u| u > r.from)) {
            tpl.add_partition_offset(topic, r.partition, Offset::Offset(r.from))
                .map_err(|e| kafka_error("assign", &e))?;
            open.insert(r.partition);
        }
        if open.is_empty() {
            return Ok(true);
        }
        self.consumer.assign(&tpl).map_err(|e| kafka_error("assign", &e))?;
        let until = |p: i32| ranges.iter().find(|r| r.partition == p).and_then(|r| r.until);
        let result = (|| {
            while !open.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                let Some(polled) = self.consumer.poll(left.min(Duration::from_millis(100))) else { continue };
                match polled {
                    Ok(m) => {
                        let p = m.partition();
                        if !open.contains(&p) {
                            continue;
                        }
                        if until(p).is_some_and(|u| m.offset() >= u) {
                            open.remove(&p);
                            continue;
                        }
                        let rec = record_of(&m);
                        if until(p).is_some_and(|u| m.offset() + 1 >= u) {
                            open.remove(&p);
                        }
                        if !f(rec) {
                            return Ok(false);
                        }
                    }
                    Err(KafkaError::PartitionEOF(p)) => {
                        open.remove(&p);
                    }
                    Err(e) if transient(&e) => {}
                    Err(e) => return Err(kafka_error("fetch", &e)),
                }
            }
            Ok(true)
        })();
        let _ = self.consumer.unassign();
        result
    }

    /// The first record of `topic` with a timestamp at or after `since_ms` whose header `name`
    /// has the value `value`, searched in every partition up to its end, until `deadline`.
    pub fn find_by_header(
        &self,
        topic: &str,
        since_ms: i64,
        name: &str,
        value: &[u8],
        deadline: Instant,
    ) -> Result<Option<ReadRecord>> {
        let partitions = self.partitions(topic)?;
        let ranges: Vec<Range> = self
            .offsets_at(topic, &partitions, since_ms)?
            .into_iter()
            .map(|(partition, from)| Range { partition, from, until: None })
            .collect();
        let mut found = None;
        let complete = self.read(topic, &ranges, deadline, |r| {
            if r.headers.iter().any(|(k, v)| k == name && v == value) {
                found = Some(r);
                return false;
            }
            true
        })?;
        if found.is_none() && !complete {
            return Err(Error::timeout(format!("the search of {topic} for header {name} did not finish in time")));
        }
        Ok(found)
    }
}

impl Reader {
    /// Assigns `at` (partition, next offset) of `topic` in addition to what is assigned, and
    /// keeps them so: [`Reader::poll_next`] then reads on from there round after round.
    pub fn assign_more(&self, topic: &str, at: &[(i32, i64)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in at {
            tpl.add_partition_offset(topic, p, Offset::Offset(o)).map_err(|e| kafka_error("assign", &e))?;
        }
        self.consumer.incremental_assign(&tpl).map_err(|e| kafka_error("assign", &e))
    }

    /// The next record of the assigned partitions within `timeout`; `None` when there is none by
    /// then (a partition read to its end and a broker connection being retried are no records).
    pub fn poll_next(&self, timeout: Duration) -> Result<Option<ReadRecord>> {
        match self.consumer.poll(timeout) {
            None | Some(Err(KafkaError::PartitionEOF(_))) => Ok(None),
            Some(Ok(m)) => Ok(Some(record_of(&m))),
            Some(Err(e)) if transient(&e) => Ok(None),
            Some(Err(e)) => Err(kafka_error("fetch", &e)),
        }
    }
}

/// What [`Reader::follow`] hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// A record, in offset order per partition.
    Record(ReadRecord),
    /// The partition was read up to this offset (its end, when said).
    Caught(i32, i64),
}

impl Reader {
    /// Follows partitions of `topic` from the offsets `from` (partition, offset) until `stop`:
    /// each record goes to `f`, and each time a partition is read to its end so does its end
    /// offset; new records keep coming as they are written. An error of the fetch ends it.
    pub fn follow(
        &self,
        topic: &str,
        from: &[(i32, i64)],
        stop: &AtomicBool,
        mut f: impl FnMut(Followed),
    ) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in from {
            tpl.add_partition_offset(topic, p, Offset::Offset(o)).map_err(|e| kafka_error("assign", &e))?;
        }
        self.consumer.assign(&tpl).map_err(|e| kafka_error("assign", &e))?;
        let result = (|| {
            while !stop.load(Ordering::Relaxed) {
                match self.consumer.poll(Duration::from_millis(100)) {
                    None => {}
                    Some(Ok(m)) => f(Followed::Record(record_of(&m))),
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        let at = self.consumer.position().map_err(|e| kafka_error("position", &e))?;
                        if let Some(Offset::Offset(o)) = at.find_partition(topic, p).map(|e| e.offset()) {
                            f(Followed::Caught(p, o));
                        }
                    }
                    Some(Err(e)) if transient(&e) => {}
                    Some(Err(e)) => return Err(kafka_error("fetch", &e)),
                }
            }
            Ok(())
        })();
        let _ = self.consumer.unassign();
        result
    }
}

/// A fetched record as a [`ReadRecord`].
fn record_of<M: Message>(m: &M) -> ReadRecord {
    ReadRecord {
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers: m
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect())
            .unwrap_or_default(),
    }
}

/// Whether a poll error is librdkafka reporting a broker connection it retries by itself (a
/// broker down or restarting, or one seen while the reader sat idle in the pool): not the
/// fetch's failure, so a read after a broker restart does not fail on a stale report.
fn transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::{AllBrokersDown, BrokerTransportFailure, Resolve};
    matches!(e, KafkaError::MessageConsumption(c) | KafkaError::Global(c)
        if matches!(c, BrokerTransportFailure | AllBrokersDown | Resolve))
}

/// The reader's client settings (the cluster `config` produces to, its security settings and its
/// non-producer `kafka.properties`) and its context; also used for the admin client.
pub(crate) fn client_config(config: &Config) -> Result<(ClientConfig, ReaderContext)> {
    let mut props: BTreeMap<String, String> = config
        .kafka
        .properties
        .iter()
        .filter(|(k, _)| !PRODUCER_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    props.insert("bootstrap.servers".to_owned(), config.kafka.bootstrap_servers.clone());
    // librdkafka assigns partitions only to a consumer with a group id; this one never joins
    // the group (no subscribe) and never commits, so the group holds no state.
    props.insert("group.id".to_owned(), READER_GROUP.to_owned());
    props.insert("enable.auto.commit".to_owned(), "false".to_owned());
    props.insert("enable.auto.offset.store".to_owned(), "false".to_owned());
    props.insert("enable.partition.eof".to_owned(), "true".to_owned());
    props.insert("isolation.level".to_owned(), "read_committed".to_owned());
    props.insert("auto.offset.reset".to_owned(), "earliest".to_owned());
    crate::security::add_properties(config.kafka.tls.as_ref(), config.kafka.auth.as_ref(), &mut props)?;
    let mut cc = ClientConfig::new();
    for (k, v) in &props {
        cc.set(k, v);
    }
    let msk_iam = crate::producer::msk_iam(config.kafka.auth.as_ref())?;
    Ok((cc, ReaderContext { msk_iam }))
}

fn kafka_error(what: &str, e: &KafkaError) -> Error {
    Error::unavailable(format!("Kafka {what} failed: {e}"))
}

/// Logs as the producers do and signs MSK IAM tokens.
pub(crate) struct ReaderContext {
    msk_iam: Option<Arc<MskIam>>,
}

impl ClientContext for ReaderContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
        let msk =
            self.msk_iam.as_ref().ok_or("sasl.mechanism OAUTHBEARER needs kafka.auth.mechanism \"aws-msk-iam\"")?;
        let (token, lifetime_ms) = msk.token()?;
        Ok(OAuthToken { token, principal_name: "topicgate".to_owned(), lifetime_ms })
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                log::Level::Error
            }
            RDKafkaLogLevel::Warning => log::Level::Warn,
            _ => log::Level::Debug,
        };
        log::log!(target: "topicgate::kafka", level, "librdkafka reader {fac}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching a partition's end is how a read finishes, not a fault.
        if matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            return;
        }
        log::warn!(target: "topicgate::kafka", "kafka reader error: {error}: {reason}");
    }
}

impl ConsumerContext for ReaderContext {}
