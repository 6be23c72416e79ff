//! Process-global rdkafka producers, one per distinct cluster setting, and awaited delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::Message;

use crate::aws::{self, AwsSettings};
use crate::completion::{CompletionQueue, Formats};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::metrics::{self, ProducerState};
use crate::runtime;
use crate::security::AuthConfig;

type DeliveryOutcome = std::result::Result<Delivery, Error>;

/// Where and when a record goes: a fixed partition and a timestamp (CreateTime, epoch
/// milliseconds), each `None` for the producer's choice (the partitioner; the time of sending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// The partition, or `None` for the partitioner's choice.
    pub partition: Option<i32>,
    /// The record's timestamp, or `None` for now.
    pub timestamp_ms: Option<i64>,
}

impl Placement {
    /// The C ABI's form: -1 for the producer's choice.
    pub fn from_abi(partition: i32, timestamp_ms: i64) -> Placement {
        Placement {
            partition: (partition != -1).then_some(partition),
            timestamp_ms: (timestamp_ms != -1).then_some(timestamp_ms),
        }
    }

    /// A negative partition is 400.
    pub fn check(&self) -> Result<()> {
        if self.partition.is_some_and(|p| p < 0) {
            return Err(Error::bad_request("partition: must be 0 or more"));
        }
        Ok(())
    }
}

/// Where a record's delivery report goes.
pub enum Reply {
    /// To a caller blocked in [`Producer::send`].
    Wait(SyncSender<DeliveryOutcome>),
    /// Into a completion queue, tagged with the caller's token.
    Queue {
        /// The queue the caller drains.
        queue: Arc<CompletionQueue>,
        /// The caller's name for the record.
        token: u64,
        /// Bytes of the record's value, reported with its outcome (for metrics).
        value_len: usize,
        /// The formats it was encoded with, reported with its outcome.
        formats: Formats,
    },
}

impl Reply {
    fn answer(self, outcome: DeliveryOutcome) {
        match self {
            // The publisher may have given up waiting; then nobody needs the answer.
            Reply::Wait(sender) => drop(sender.send(outcome)),
            Reply::Queue { queue, token, value_len, formats } => queue.push_encoded(token, value_len, formats, outcome),
        }
    }
}

/// Routes librdkafka's logs and errors into the `log` facade, answers delivery reports,
/// remembers authentication failures and signs MSK IAM tokens.
pub struct Context {
    timeout: Duration,
    msk_iam: Option<Arc<MskIam>>,
    /// librdkafka's reason for the last authentication failure, cleared by a successful delivery.
    auth_failure: Mutex<Option<String>>,
    /// Which replacement of its producer this librdkafka instance is (0 for the first).
    generation: u64,
    /// The producer this instance belongs to, told about a fatal error so that it replaces the instance.
    owner: OnceLock<Weak<Producer>>,
    /// Whether the fatal error was logged (the error callback and a publish may both see it first).
    fatal_logged: AtomicBool,
    /// Whether an authorization refusal (403) was logged: once per producer, not per record.
    denied_logged: AtomicBool,
    /// The producer's state for metrics, from librdkafka's statistics; shared by its generations.
    state: Arc<ProducerState>,
    /// The last error report and when it came (see `is_echo`).
    last_error: Mutex<Option<(String, Instant)>>,
}

/// How soon an identical error report counts as the same event delivered again.
const ERROR_ECHO: Duration = Duration::from_millis(5);

impl Context {
    fn new(timeout: Duration, msk_iam: Option<Arc<MskIam>>, generation: u64, state: Arc<ProducerState>) -> Context {
        Context {
            timeout,
            msk_iam,
            auth_failure: Mutex::new(None),
            generation,
            owner: OnceLock::new(),
            fatal_logged: AtomicBool::new(false),
            denied_logged: AtomicBool::new(false),
            state,
            last_error: Mutex::new(None),
        }
    }

    /// Whether this error report repeats the one before within `ERROR_ECHO`: rust-rdkafka 0.39
    /// hands each error event to the callback twice, back to back (`Client::poll_event`, then
    /// `BaseProducer::poll`). A real repeat (a broker refusing every reconnect) comes after a
    /// backoff of at least `reconnect.backoff.ms`, far later.
    fn is_echo(&self, error: &KafkaError, reason: &str) -> bool {
        let text = format!("{error}: {reason}");
        let now = Instant::now();
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        let echo = matches!(&*last, Some((t, at)) if *t == text && now.duration_since(*at) < ERROR_ECHO);
        *last = Some((text, now));
        echo
    }

    /// Logs the first record the cluster's ACLs refuse (a 403): a configuration fault, logged once
    /// per producer rather than once per record.
    fn log_denied_once(&self, topic: &str, error: &Error) {
        if error.status == crate::Status::Forbidden && !self.denied_logged.swap(true, Ordering::AcqRel) {
            log::error!(
                target: "topicgate::kafka",
                "Kafka authorization failed for topic `{topic}`: {}; records the cluster refuses are answered 403 \
                 until its ACLs allow them (logged once per producer)",
                error.message
            );
        }
    }

    /// Logs this instance's fatal error once, whoever notices it first.
    fn log_fatal_once(&self, reason: &str) {
        if !self.fatal_logged.swap(true, Ordering::AcqRel) {
            log::error!(
                target: "topicgate::kafka",
                "Kafka producer hit a fatal error: {reason}; records it still holds fail, new records go to a new producer"
            );
        }
    }
}

/// What the OAUTHBEARER token callback needs to sign an MSK IAM token.
pub(crate) struct MskIam {
    region: aws_config::Region,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    lifetime_override: Option<Duration>,
}

impl MskIam {
    fn new(
        region: Option<&String>,
        role_arn: Option<&String>,
        role_session_name: Option<&String>,
        lifetime: Option<u64>,
    ) -> Result<MskIam> {
        let settings = AwsSettings {
            region: region.cloned(),
            role_arn: role_arn.cloned(),
            role_session_name: role_session_name.cloned(),
        };
        let config = aws::sdk_config(&settings, "kafka.auth.region")?;
        Ok(MskIam {
            region: config.region().cloned().expect("sdk_config checks the region"),
            credentials: config
                .credentials_provider()
                .ok_or_else(|| Error::unavailable("Kafka authentication failed: no AWS credentials provider found"))?,
            lifetime_override: lifetime.map(Duration::from_millis),
        })
    }

    /// A signed token and the epoch milliseconds at which librdkafka should consider it expired.
    pub(crate) fn token(&self) -> std::result::Result<(String, i64), String> {
        let (region, credentials) = (self.region.clone(), self.credentials.clone());
        let (token, expiry_ms) = runtime::block_on(async move {
            aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(region, credentials).await
        })
        .map_err(|e| e.message)?
        .map_err(|e| format!("cannot sign an MSK IAM token: {e}"))?;
        let lifetime_ms = match self.lifetime_override {
            Some(d) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                (now + d).as_millis() as i64
            }
            None => expiry_ms,
        };
        Ok((token, lifetime_ms))
    }
}

/// SASL and TLS failures; a client certificate the broker refuses shows up (TLS 1.3) as a
/// transport failure whose reason carries the TLS alert, so that text is checked too.
fn is_auth_error(code: Option<RDKafkaErrorCode>, reason: &str) -> bool {
    use RDKafkaErrorCode as C;
    match code {
        Some(C::Authentication | C::SaslAuthenticationFailed | C::SSL) => true,
        Some(C::BrokerTransportFailure) => reason.contains("SSL alert") || reason.contains("certificate"),
        _ => false,
    }
}

impl ClientContext for Context {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// Read for the few numbers the metrics show rather than decoded whole (rust-rdkafka's default
    /// decodes every topic and partition into `Statistics`, once a second per producer).
    fn stats_raw(&self, statistics: &[u8]) {
        if let Err(e) = self.state.update_from_json(statistics) {
            log::debug!(target: "topicgate::kafka", "librdkafka statistics not understood: {e}");
        }
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
        let msk =
            self.msk_iam.as_ref().ok_or("sasl.mechanism OAUTHBEARER needs kafka.auth.mechanism \"aws-msk-iam\"")?;
        let (token, lifetime_ms) = msk.token().inspect_err(|e| log::error!(target: "topicgate::kafka", "{e}"))?;
        log::debug!(target: "topicgate::kafka", "MSK IAM token signed, valid until {lifetime_ms} ms since the epoch");
        Ok(OAuthToken { token, principal_name: "topicgate".to_owned(), lifetime_ms })
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let level = match level {
            // The error callback logs a fatal error once, with what happens next (see `error`).
            _ if fac == "FATAL" => log::Level::Debug,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                log::Level::Error
            }
            RDKafkaLogLevel::Warning => log::Level::Warn,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => log::Level::Info,
            RDKafkaLogLevel::Debug => log::Level::Debug,
        };
        log::log!(target: "topicgate::kafka", level, "librdkafka {fac}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.is_echo(&error, reason) {
            return;
        }
        if error.rdkafka_error_code().is_some_and(may_be_fatal) {
            // librdkafka raises at most one fatal error per instance, and reports it here with its
            // original code (e.g. OutOfOrderSequenceNumber), not `Fatal`. Replace the instance now
            // rather than at the next publish, so that records it still queues are answered at
            // once. Not on this thread: it is the instance's polling thread, which dropping the
            // instance joins; that thread checks that the error is fatal.
            if let Some(owner) = self.owner.get().cloned() {
                let generation = self.generation;
                let text = format!("{error}: {reason}");
                let spawned = std::thread::Builder::new().name("topicgate-kafka-reset".to_owned()).spawn(move || {
                    if let Some(producer) = owner.upgrade() {
                        producer.replace_if_fatal(generation, &text);
                    }
                });
                if let Err(e) = spawned {
                    log::warn!(target: "topicgate::kafka", "cannot start the producer reset thread ({e}); the next publish resets it");
                }
            } else {
                log::warn!(target: "topicgate::kafka", "kafka client error: {error}: {reason}");
            }
        } else if is_auth_error(error.rdkafka_error_code(), reason) {
            // Logged once per failure episode, not once per retry or request.
            let mut failure = self.auth_failure.lock().unwrap_or_else(|p| p.into_inner());
            if failure.is_none() {
                log::error!(target: "topicgate::kafka", "Kafka authentication failed: {reason}");
            }
            *failure = Some(reason.to_owned());
        } else {
            log::warn!(target: "topicgate::kafka", "kafka client error: {error}: {reason}");
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Reply>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let mut kind = None;
        let outcome = match result {
            Ok(m) => {
                if self.auth_failure.lock().unwrap_or_else(|p| p.into_inner()).take().is_some() {
                    log::info!(target: "topicgate::kafka", "Kafka authentication works again");
                }
                Ok(Delivery { partition: m.partition(), offset: m.offset() })
            }
            Err((e, m)) => {
                // SAFETY: the message pointer is valid for the duration of the callback.
                let status = unsafe { rd::rd_kafka_message_status(m.ptr()) };
                let never_sent = status == rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
                kind = Some(error_kind(e));
                match self.auth_failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                    Some(reason) if never_sent => {
                        Err(Error::unavailable(format!("Kafka authentication failed, record not written: {reason}")))
                    }
                    _ => {
                        let error = delivery_error(e, status, self.timeout, m.partition());
                        self.log_denied_once(m.topic(), &error);
                        Err(error)
                    }
                }
            }
        };
        if let (Err(e), Some(kind)) = (&outcome, kind) {
            metrics::count_delivery_error(&kind, e.status);
        }
        reply.answer(outcome);
    }
}

/// The kind of a delivery error, for the metrics: rust-rdkafka's name of its librdkafka error code
/// (e.g. `MessageTimedOut`, `MessageSizeTooLarge`), a bounded set.
fn error_kind(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "Unknown".to_owned(),
    }
}

/// Maps a failed delivery (of a record to `partition`, -1 for the partitioner's choice) to a
/// status; `persisted` tells a never-sent record (503) from an unacknowledged one (504).
fn delivery_error(e: &KafkaError, persisted: rd::rd_kafka_msg_status_t, timeout: Duration, partition: i32) -> Error {
    let ms = timeout.as_millis();
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) if persisted == rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => {
            // librdkafka's "not persisted": never sent, or refused by the broker. Not a guarantee: a
            // leader that appended the record and then lost leadership (controlled shutdown) answers
            // NOT_LEADER, so the record can be in the log (seen in tests/faults). Hence no "not written".
            Error::unavailable(format!(
                "Kafka broker unreachable: record not delivered within the {ms} ms delivery timeout; retry later"
            ))
        }
        Some(RDKafkaErrorCode::MessageTimedOut) => Error::timeout(format!(
            "Kafka broker did not acknowledge the record within the {ms} ms delivery timeout; it may or may not have been written"
        )),
        // What a fatal (idempotence) error does to records: queued ones are purged, the batch
        // that tripped it fails with the broker's code, in-flight ones may fail with it too.
        Some(code) if is_fatal_class(code) => {
            if persisted == rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED {
                Error::unavailable(format!(
                    "Kafka producer was reset after a fatal error ({code}) before sending the record: record not written; retry"
                ))
            } else {
                Error::timeout(format!(
                    "Kafka producer failed fatally ({code}) while the record was in flight; it may or may not have been written"
                ))
            }
        }
        Some(code) => produce_error(code, (partition >= 0).then_some(partition)),
        None => Error::internal(format!("Kafka delivery failed: {e}")),
    }
}

/// Error codes librdkafka may raise as an instance's fatal error (idempotence and authorization).
fn may_be_fatal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    is_fatal_class(code)
        || matches!(
            code,
            C::Inconsistent
                | C::GaplessGuarantee
                | C::ClusterAuthorizationFailed
                | C::TransactionalIdAuthorizationFailed
        )
}

/// Delivery errors that come from a fatal producer error or from purging the producer's queues.
fn is_fatal_class(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fatal
            | C::PurgeQueue
            | C::PurgeInflight
            | C::OutOfOrderSequenceNumber
            | C::UnknownProducerId
            | C::InvalidProducerEpoch
            | C::InvalidProducerIdMapping
            | C::ProducerFenced
    )
}

/// What the cluster's ACLs refused, for the authorization error codes (a 403).
pub(crate) fn denied(code: RDKafkaErrorCode) -> Option<&'static str> {
    use RDKafkaErrorCode as C;
    match code {
        C::TopicAuthorizationFailed => Some("not authorized to write this topic (TopicAuthorizationFailed)"),
        C::ClusterAuthorizationFailed => {
            Some("not authorized on the cluster (ClusterAuthorizationFailed; idempotence needs IdempotentWrite)")
        }
        C::TransactionalIdAuthorizationFailed => {
            Some("not authorized to use the transactional id (TransactionalIdAuthorizationFailed)")
        }
        _ => None,
    }
}

/// Maps a produce error code (from `send` or from the delivery report, for a record to
/// `partition`, if one was asked for) to a status.
pub(crate) fn produce_error(code: RDKafkaErrorCode, partition: Option<i32>) -> Error {
    use RDKafkaErrorCode as C;
    if let Some(what) = denied(code) {
        return Error::forbidden(format!(
            "Kafka denied the write: {what}; check the cluster's ACLs for the gateway's principal; record not written"
        ));
    }
    match code {
        C::UnknownPartition => Error::bad_request(match partition {
            Some(p) => format!("partition {p}: the topic has no such partition on the Kafka cluster"),
            None => "partition: the topic has no such partition on the Kafka cluster".to_owned(),
        }),
        C::QueueFull => Error::unavailable(
            "Kafka producer queue is full (queue.buffering.max.messages / queue.buffering.max.kbytes): record not written; retry later",
        ),
        C::MessageSizeTooLarge | C::InvalidMessageSize => Error::too_large("record is larger than the broker accepts"),
        C::UnknownTopic | C::UnknownTopicOrPartition => Error::not_found("topic does not exist on the Kafka cluster"),
        C::InvalidTopic => Error::bad_request("topic name is not valid for Kafka"),
        C::Authentication | C::SaslAuthenticationFailed | C::SSL => {
            Error::unavailable("Kafka authentication failed; check the cluster credentials")
        }
        C::AllBrokersDown
        | C::BrokerTransportFailure
        | C::Resolve
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::RequestTimedOut => Error::unavailable(format!("Kafka cluster unavailable: {code}")),
        C::Fatal => Error::unavailable("Kafka producer hit a fatal error and must be recreated"),
        _ => Error::internal(format!("Kafka produce failed: {code}")),
    }
}

/// A shared producer with its delivery deadline. The librdkafka instance inside is replaced
/// by a fresh one after a fatal error (e.g. an idempotence sequence desync), which would
/// otherwise fail every later record.
pub struct Producer {
    current: RwLock<Arc<Generation>>,
    config: ClientConfig,
    msk_iam: Option<Arc<MskIam>>,
    timeout: Duration,
    /// This producer, for the instances it creates (they ask it to replace them).
    me: Weak<Producer>,
    /// What its librdkafka statistics say, for metrics and readiness.
    state: Arc<ProducerState>,
}

/// One librdkafka producer instance; `number` counts replacements (0 for the first).
struct Generation {
    inner: ThreadedProducer<Context>,
    number: u64,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// A producer's complete librdkafka property set, which identifies it.
pub(crate) type Properties = BTreeMap<String, String>;

/// A producer's identity: its properties plus the auth settings the token callback uses.
type ProducerKey = (Properties, String);

/// Live producers by identity; entries die with their last publisher.
static PRODUCERS: LazyLock<Mutex<HashMap<ProducerKey, Weak<Producer>>>> = LazyLock::new(Default::default);

impl Producer {
    /// Returns the producer for these properties, creating it if no live publisher uses it yet.
    pub fn shared(properties: &Properties, timeout: Duration, auth: Option<&AuthConfig>) -> Result<Arc<Producer>> {
        let key: ProducerKey = (properties.clone(), format!("{auth:?}"));
        let mut producers = PRODUCERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = producers.get(&key).and_then(Weak::upgrade) {
            return Ok(p);
        }
        producers.retain(|_, w| w.strong_count() > 0);
        let mut config = ClientConfig::new();
        for (k, v) in properties {
            config.set(k, v);
        }
        let msk_iam = msk_iam(auth)?;
        let state = ProducerState::register(properties.get("bootstrap.servers").map_or("", String::as_str));
        let first = Generation::create(&config, msk_iam.clone(), timeout, 0, state.clone())
            .map_err(|e| Error::bad_request(format!("config: kafka.properties: {}", redact_creation_error(&e))))?;
        let producer = Arc::new_cyclic(|me| Producer {
            current: RwLock::new(Arc::new(first)),
            config,
            msk_iam,
            timeout,
            me: me.clone(),
            state,
        });
        let _ = producer.current_generation().inner.context().owner.set(producer.me.clone());
        producers.insert(key, Arc::downgrade(&producer));
        Ok(producer)
    }

    /// Produces one record and waits for the broker's acknowledgement or the deadline.
    pub fn send(
        &self,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        headers: &[crate::headers::Header],
    ) -> Result<Delivery> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.enqueue(topic, value, key, headers, Placement::default(), Reply::Wait(reply))?;
        // librdkafka reports every record by message.timeout.ms; the margin covers callback scheduling.
        match answer.recv_timeout(self.timeout + Duration::from_secs(5)) {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::timeout(format!(
                "no delivery report within {} ms; the record may or may not have been written",
                self.timeout.as_millis()
            ))),
        }
    }

    /// Queues one record for sending (to `placement`'s partition and time, if given); its outcome goes to `reply` exactly once, by the delivery
    /// timeout (librdkafka's message.timeout.ms). An error here means the record was not queued
    /// and `reply` hears nothing.
    pub fn enqueue(
        &self,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        headers: &[crate::headers::Header],
        placement: Placement,
        reply: Reply,
    ) -> Result<()> {
        let mut generation = self.usable_generation()?;
        let mut sent = generation.inner.send(base_record(topic, value, key, headers, placement, reply));
        if let Err((e, record)) = sent {
            if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
                // Raised between the check above and now; the record was not queued, so the
                // fresh producer can take it without risk of a duplicate.
                generation = self.replace(generation.number)?;
                sent = generation.inner.send(record);
            } else {
                sent = Err((e, record));
            }
        }
        match sent {
            Ok(()) => Ok(()),
            Err((e, _)) => Err(match e.rdkafka_error_code() {
                Some(code) => {
                    let error = produce_error(code, placement.partition);
                    generation.inner.context().log_denied_once(topic, &error);
                    error
                }
                None => Error::internal(format!("Kafka produce failed: {e}")),
            }),
        }
    }

    /// A librdkafka producer of its own with these properties plus `transactional.id` (for
    /// crate::transaction): same logging, authentication, metrics and delivery reports as a shared
    /// producer, but not in the shared producers' registry and never replaced; its owner starts it
    /// with `init_transactions`.
    pub(crate) fn transactional(
        properties: &Properties,
        timeout: Duration,
        auth: Option<&AuthConfig>,
        transactional_id: &str,
    ) -> Result<ThreadedProducer<Context>> {
        let mut config = ClientConfig::new();
        for (k, v) in properties {
            config.set(k, v);
        }
        config.set("transactional.id", transactional_id);
        let state = ProducerState::register(properties.get("bootstrap.servers").map_or("", String::as_str));
        let context = Context::new(timeout, msk_iam(auth)?, 0, state);
        config
            .create_with_context(context)
            .map_err(|e| Error::bad_request(format!("config: kafka.properties: {}", redact_creation_error(&e))))
    }

    /// Waits until every queued record is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.current_generation()
            .inner
            .flush(timeout)
            .map_err(|_| Error::timeout(format!("records still queued after {} ms", timeout.as_millis())))
    }

    /// Records the current librdkafka producer holds: queued or sent and not yet acknowledged.
    pub fn in_flight_count(&self) -> i32 {
        self.current_generation().inner.in_flight_count()
    }

    /// How many times the librdkafka producer was replaced after a fatal error (0 at first).
    pub fn replacements(&self) -> u64 {
        self.current_generation().number
    }

    /// Raises a fatal error in the current librdkafka producer (librdkafka's own test hook),
    /// as an idempotence sequence desync would. For tests of the recovery only: it exists only
    /// with the `test-hooks` feature, which no shipped build has.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn raise_fatal_error_for_tests(&self, reason: &str) -> Result<()> {
        use rdkafka::types::RDKafkaRespErr;
        let reason = std::ffi::CString::new(reason).map_err(|_| Error::bad_request("reason: contains NUL"))?;
        let generation = self.current_generation();
        // SAFETY: the client pointer is valid while `generation` is alive; the reason is NUL-terminated.
        let code = unsafe {
            rd::rd_kafka_test_fatal_error(
                generation.inner.client().native_ptr(),
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            )
        };
        match code {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            other => Err(Error::internal(format!("rd_kafka_test_fatal_error: {}", RDKafkaErrorCode::from(other)))),
        }
    }

    fn current_generation(&self) -> Arc<Generation> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current librdkafka producer, replaced first if it has hit a fatal error.
    fn usable_generation(&self) -> Result<Arc<Generation>> {
        let current = self.current_generation();
        match current.inner.client().fatal_error() {
            None => Ok(current),
            Some((code, reason)) => {
                current.inner.context().log_fatal_once(&format!("{code}: {reason}"));
                self.replace(current.number)
            }
        }
    }

    /// Replaces instance number `generation` if it is still the current one and has hit a fatal
    /// error (the error callback's check; it may report a non-fatal error with the same code,
    /// `error`, which is then logged as any other).
    fn replace_if_fatal(&self, generation: u64, error: &str) {
        let current = self.current_generation();
        if current.number == generation {
            match current.inner.client().fatal_error() {
                Some((code, reason)) => {
                    current.inner.context().log_fatal_once(&format!("{code}: {reason}"));
                    if let Err(e) = self.replace(generation) {
                        log::error!(target: "topicgate::kafka", "{}", e.message);
                    }
                }
                None => log::warn!(target: "topicgate::kafka", "kafka client error: {error}"),
            }
        }
        log::debug!(target: "topicgate::kafka", "fatal-error check of producer instance {generation} done ({error})");
    }

    /// Swaps instance number `failed` for a fresh librdkafka producer (once, however many
    /// threads ask) and purges the records the old one still queues: they were never sent and
    /// fail as not written (503). Records already sent keep their real outcome: the old instance
    /// is kept by a reaper thread until the last of them is reported (or the delivery timeout has
    /// passed), and only then dropped, since dropping it purges the records in flight (504).
    fn replace(&self, failed: u64) -> Result<Arc<Generation>> {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.number != failed {
            return Ok(current.clone());
        }
        let number = failed + 1;
        let fresh = Generation::create(&self.config, self.msk_iam.clone(), self.timeout, number, self.state.clone())
            .map_err(|e| {
                Error::unavailable(format!(
                    "Kafka producer hit a fatal error and a new one could not be created: {}",
                    redact_creation_error(&e)
                ))
            })?;
        let _ = fresh.inner.context().owner.set(self.me.clone());
        let old = std::mem::replace(&mut *current, Arc::new(fresh));
        let fresh = current.clone();
        drop(current);
        log::info!(target: "topicgate::kafka", "Kafka producer replaced after a fatal error (replacement {number})");
        old.inner.purge(PurgeConfig::default().queue());
        retire(old, self.timeout + Duration::from_secs(5));
        Ok(fresh)
    }
}

impl Generation {
    fn create(
        config: &ClientConfig,
        msk_iam: Option<Arc<MskIam>>,
        timeout: Duration,
        number: u64,
        state: Arc<ProducerState>,
    ) -> std::result::Result<Generation, KafkaError> {
        let context = Context::new(timeout, msk_iam, number, state);
        let inner: ThreadedProducer<Context> = config.create_with_context(context)?;
        Ok(Generation { inner, number })
    }
}

/// Keeps a replaced librdkafka instance, on a thread of its own, until it holds no record (every
/// record it sent has had its delivery report) or `patience` has passed (librdkafka reports every
/// record by the delivery timeout), then drops it there. Dropping it at once would purge the records
/// in flight, which would then be answered 504 instead of their real outcome.
fn retire(old: Arc<Generation>, patience: Duration) {
    let spawned = std::thread::Builder::new().name("topicgate-kafka-reaper".to_owned()).spawn(move || {
        let until = std::time::Instant::now() + patience;
        while old.inner.in_flight_count() > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = old.inner.in_flight_count();
        if left > 0 {
            log::warn!(target: "topicgate::kafka", "replaced Kafka producer dropped with {left} records still unreported");
        }
        drop(old);
    });
    if let Err(e) = spawned {
        log::warn!(target: "topicgate::kafka", "cannot start the reaper thread of a replaced producer ({e}); dropped at once");
    }
}

/// Drops a librdkafka producer on a thread of its own: dropping one purges what it still holds,
/// flushes for up to 500 ms and joins its threads, which no request should wait for.
pub(crate) fn drop_in_background<T: Send + 'static>(producer: T) {
    let spawned = std::thread::Builder::new().name("topicgate-kafka-drop".to_owned()).spawn(move || drop(producer));
    if let Err(e) = spawned {
        log::warn!(target: "topicgate::kafka", "cannot start a thread to drop a producer ({e}); dropped here");
    }
}

/// The MSK IAM token signer that `auth` asks for, if any.
pub(crate) fn msk_iam(auth: Option<&AuthConfig>) -> Result<Option<Arc<MskIam>>> {
    match auth {
        Some(AuthConfig::AwsMskIam { region, role_arn, role_session_name, token_lifetime_ms }) => {
            let msk = MskIam::new(region.as_ref(), role_arn.as_ref(), role_session_name.as_ref(), *token_lifetime_ms)?;
            // Sign once now: missing credentials are reported at creation, not as timeouts later.
            msk.token().map_err(|e| Error::unavailable(format!("Kafka authentication failed: {e}")))?;
            Ok(Some(Arc::new(msk)))
        }
        _ => Ok(None),
    }
}

/// The librdkafka record for one value; its delivery report goes to `reply`.
pub(crate) fn base_record<'a>(
    topic: &'a str,
    value: &'a [u8],
    key: Option<&'a [u8]>,
    headers: &[crate::headers::Header],
    placement: Placement,
    reply: Reply,
) -> BaseRecord<'a, [u8], [u8], Box<Reply>> {
    let mut record = BaseRecord::with_opaque_to(topic, Box::new(reply)).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(partition) = placement.partition {
        record = record.partition(partition);
    }
    if let Some(ms) = placement.timestamp_ms {
        record = record.timestamp(ms);
    }
    if !headers.is_empty() {
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in headers {
            owned = owned.insert(Header { key: k, value: Some(v.as_slice()) });
        }
        record = record.headers(owned);
    }
    record
}

/// Names the offending property; its value may be a secret, so it is cut out of librdkafka's text.
fn redact_creation_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, description, key, value) => {
            let description =
                if value.is_empty() { description.clone() } else { description.replace(value.as_str(), "<value>") };
            format!("property `{key}`: {description}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> =
            [("bootstrap.servers", "127.0.0.1:1")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    }

    #[test]
    fn an_error_report_delivered_twice_is_handled_once() {
        let c = Context::new(Duration::from_secs(1), None, 0, ProducerState::register("127.0.0.1:1"));
        let refused = || KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(!c.is_echo(&refused(), "connection refused"));
        assert!(c.is_echo(&refused(), "connection refused"), "the same event handed over again");
        assert!(!c.is_echo(&refused(), "another reason"));
        // The same report after a reconnect backoff is a new event.
        c.last_error.lock().unwrap().as_mut().unwrap().1 -= ERROR_ECHO * 2;
        assert!(!c.is_echo(&refused(), "another reason"));
    }

    #[test]
    fn same_properties_share_one_producer() {
        let a = Producer::shared(&props(&[("client.id", "share-test")]), Duration::from_secs(1), None).unwrap();
        let b = Producer::shared(&props(&[("client.id", "share-test")]), Duration::from_secs(1), None).unwrap();
        let c = Producer::shared(&props(&[("client.id", "other")]), Duration::from_secs(1), None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn bad_property_is_named_without_its_value() {
        let e = Producer::shared(
            &props(&[("sasl.password", "s3cret"), ("acks", "sometimes")]),
            Duration::from_secs(1),
            None,
        )
        .unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("acks"), "{}", e.message);
        assert!(!e.message.contains("sometimes") && !e.message.contains("s3cret"), "{}", e.message);
        let e = Producer::shared(&props(&[("no.such.property", "1")]), Duration::from_secs(1), None).unwrap_err();
        assert!(e.message.contains("no.such.property"), "{}", e.message);
    }

    /// librdkafka's statistics are read for the few numbers the metrics show, not decoded whole:
    /// a document with just those fields (and any others, of any shape) is taken in.
    #[test]
    fn statistics_are_read_for_the_numbers_the_metrics_show() {
        let bootstrap = "stats-test:9092";
        let context = Context::new(Duration::from_secs(1), None, 0, ProducerState::register(bootstrap));
        let json = br#"{"name":"x","msg_cnt":7,"msg_size":700,"unknown":{"nested":[1,2]},"brokers":{
            "b1:9092/1":{"source":"learned","state":"UP","txretries":2,"txerrs":1,"rxerrs":1},
            "b2:9092/2":{"source":"configured","state":"DOWN","txretries":3,"txerrs":0,"rxerrs":0},
            "GroupCoordinator":{"source":"logical","state":"UP","txretries":100,"txerrs":100,"rxerrs":100}}}"#;
        ClientContext::stats_raw(&context, json);
        let v: serde_json::Value = serde_json::from_str(&metrics::snapshot_json()).unwrap();
        let mine = v["producers"].as_array().unwrap().iter().find(|p| p["bootstrap"] == bootstrap).unwrap().clone();
        assert_eq!(
            [&mine["queue_messages"], &mine["queue_bytes"], &mine["brokers"], &mine["brokers_up"]],
            [7, 700, 2, 1],
            "{mine}"
        );
        assert_eq!([&mine["retries"], &mine["request_errors"]], [5, 2], "{mine}");
        assert!(mine["stats_age_seconds"].is_number(), "{mine}");
    }

    #[test]
    fn error_codes_map_to_http_statuses() {
        use crate::Status::*;
        assert_eq!(produce_error(RDKafkaErrorCode::QueueFull, None).status, Unavailable);
        assert_eq!(produce_error(RDKafkaErrorCode::MessageSizeTooLarge, None).status, PayloadTooLarge);
        assert_eq!(produce_error(RDKafkaErrorCode::UnknownTopicOrPartition, None).status, NotFound);
        assert_eq!(produce_error(RDKafkaErrorCode::SaslAuthenticationFailed, None).status, Unavailable);
        assert!(produce_error(RDKafkaErrorCode::SaslAuthenticationFailed, None)
            .message
            .contains("authentication failed"));
        let alert = "Receive failed: sslv3 alert bad certificate: SSL alert number 42";
        assert!(is_auth_error(Some(RDKafkaErrorCode::BrokerTransportFailure), alert));
        assert!(!is_auth_error(Some(RDKafkaErrorCode::BrokerTransportFailure), "Connection refused"));
        assert!(is_auth_error(Some(RDKafkaErrorCode::SaslAuthenticationFailed), ""));
        assert_eq!(produce_error(RDKafkaErrorCode::InvalidRecord, None).status, InternalError);
        // The client's fault: a partition the topic does not have, named.
        let p99 = produce_error(RDKafkaErrorCode::UnknownPartition, Some(99));
        assert_eq!(p99.status, BadRequest);
        assert!(p99.message.contains("partition 99"), "{}", p99.message);
        let unknown = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition);
        let p7 = delivery_error(
            &unknown,
            rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED,
            Duration::from_secs(1),
            7,
        );
        assert_eq!((p7.status, p7.message.contains("partition 7")), (BadRequest, true), "{}", p7.message);
        // The configuration's fault: the cluster's ACLs refuse the gateway.
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        ] {
            let e = produce_error(code, None);
            assert_eq!(e.status, Forbidden, "{code:?}");
            assert!(e.message.contains("not authorized") && e.message.contains("ACLs"), "{}", e.message);
        }
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let t = Duration::from_millis(1500);
        let never_sent =
            delivery_error(&timed_out, rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED, t, -1);
        assert_eq!(never_sent.status, Unavailable);
        assert!(never_sent.message.contains("1500 ms"));
        let maybe =
            delivery_error(&timed_out, rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED, t, -1);
        assert_eq!(maybe.status, Timeout);
        let full = produce_error(RDKafkaErrorCode::QueueFull, None);
        assert!(full.message.contains("producer queue is full"), "{}", full.message);
        // Records failed by a fatal producer error: never sent is 503, possibly sent is 504, never 500.
        for code in [RDKafkaErrorCode::PurgeQueue, RDKafkaErrorCode::Fatal, RDKafkaErrorCode::OutOfOrderSequenceNumber]
        {
            let e = KafkaError::MessageProduction(code);
            let not_sent = delivery_error(&e, rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED, t, -1);
            assert_eq!(not_sent.status, Unavailable, "{code:?}");
            assert!(not_sent.message.contains("record not written"), "{}", not_sent.message);
            let maybe = delivery_error(&e, rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED, t, -1);
            assert_eq!(maybe.status, Timeout, "{code:?}");
        }
    }
}

#[cfg(test)]
mod msk_iam_tests {
    use super::*;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;
    use base64::Engine;

    const AKID: &str = "AKIDTOPICGATETEST";
    const SECRET: &str = "topicgate/test/secret/key/0123456789";

    fn signer(lifetime: Option<Duration>) -> MskIam {
        MskIam {
            region: aws_config::Region::new("eu-west-1"),
            credentials: SharedCredentialsProvider::new(Credentials::new(AKID, SECRET, None, None, "test")),
            lifetime_override: lifetime,
        }
    }

    fn query(url: &str) -> BTreeMap<String, String> {
        let q = url.split_once('?').unwrap().1;
        q.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// Seconds since the epoch for `YYYYMMDDTHHMMSSZ` (civil-from-days, proleptic Gregorian).
    fn amz_date_to_epoch(d: &str) -> u64 {
        let n = |r: std::ops::Range<usize>| d[r].parse::<i64>().unwrap();
        let (y, m, day) = (n(0..4), n(4..6), n(6..8));
        let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m - 3) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146097 + doe - 719468;
        (days * 86400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) as u64
    }

    #[test]
    fn token_is_a_presigned_connect_request_that_verifies_under_the_test_credentials() {
        let (token, expiry_ms) = signer(None).token().unwrap();
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        assert!(url.starts_with("https://kafka.eu-west-1.amazonaws.com/?"), "{url}");
        let q = query(&url);
        assert_eq!(q["Action"], "kafka-cluster%3AConnect");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        let date = &q["X-Amz-Date"];
        assert_eq!(
            q["X-Amz-Credential"],
            format!("{AKID}%2F{}%2Feu-west-1%2Fkafka-cluster%2Faws4_request", &date[..8])
        );
        let signed_at = amz_date_to_epoch(date);
        let expires: u64 = q["X-Amz-Expires"].parse().unwrap();
        assert_eq!(expires, 900);
        assert_eq!(expiry_ms as u64, (signed_at + expires) * 1000, "expiry reported to librdkafka is the signed one");

        // Recompute the signature with aws-sigv4 from the same inputs and the test's static secret.
        assert_eq!(q["X-Amz-Signature"], presign_signature(SECRET, signed_at, expires));
        // A different secret gives a different signature: the check above can fail.
        assert_ne!(q["X-Amz-Signature"], presign_signature("wrong-secret", signed_at, expires));
    }

    /// The SigV4 query-string signature of the MSK IAM connect request, computed by aws-sigv4.
    fn presign_signature(secret: &str, signed_at: u64, expires: u64) -> String {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
        let identity = Credentials::new(AKID, secret, None, None, "verifier").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("kafka-cluster")
            .time(std::time::UNIX_EPOCH + Duration::from_secs(signed_at))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            "GET",
            "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect",
            std::iter::empty(),
            SignableBody::Bytes(&[]),
        )
        .unwrap();
        sign(request, &params).unwrap().into_parts().1
    }

    #[test]
    fn configured_lifetime_shortens_what_librdkafka_is_told() {
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let (_, lifetime) = signer(Some(Duration::from_secs(5))).token().unwrap();
        assert!((now_ms + 4_000..=now_ms + 6_000).contains(&lifetime), "{lifetime} vs now {now_ms}");
    }
}
