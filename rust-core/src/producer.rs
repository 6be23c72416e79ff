//! Process-global rdkafka producers, one per distinct cluster setting, and awaited delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::Message;

use crate::error::{Error, Result};

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Delivery {
    /// Partition the record was written to.
    pub partition: i32,
    /// Offset of the record in that partition.
    pub offset: i64,
}

type DeliveryOutcome = std::result::Result<Delivery, Error>;

/// Routes librdkafka's logs and errors into the `log` facade and answers delivery reports.
pub struct Context {
    timeout: Duration,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => log::Level::Error,
            RDKafkaLogLevel::Warning => log::Level::Warn,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => log::Level::Info,
            RDKafkaLogLevel::Debug => log::Level::Debug,
        };
        log::log!(target: "topicgate::kafka", level, "librdkafka {fac}: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log::warn!(target: "topicgate::kafka", "kafka client error: {error}: {reason}");
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<SyncSender<DeliveryOutcome>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let outcome = match result {
            Ok(m) => Ok(Delivery {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, m)) => {
                // SAFETY: the message pointer is valid for the duration of the callback.
                let status = unsafe { rd::rd_kafka_message_status(m.ptr()) };
                Err(delivery_error(e, status, self.timeout))
            }
        };
        // The publisher may have given up waiting; then nobody needs the answer.
        let _ = reply.send(outcome);
    }
}

/// Maps a failed delivery to a status; `persisted` tells a never-sent record (503) from an unacknowledged one (504).
fn delivery_error(
    e: &KafkaError,
    persisted: rd::rd_kafka_msg_status_t,
    timeout: Duration,
) -> Error {
    let ms = timeout.as_millis();
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) if persisted == rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => {
            Error::unavailable(format!("Kafka broker unreachable: record not written within the {ms} ms delivery timeout"))
        }
        Some(RDKafkaErrorCode::MessageTimedOut) => Error::timeout(format!(
            "Kafka broker did not acknowledge the record within the {ms} ms delivery timeout; it may or may not have been written"
        )),
        Some(code) => produce_error(code),
        None => Error::internal(format!("Kafka delivery failed: {e}")),
    }
}

/// Maps a produce error code (from `send` or from the delivery report) to a status.
fn produce_error(code: RDKafkaErrorCode) -> Error {
    use RDKafkaErrorCode as C;
    match code {
        C::QueueFull => Error::unavailable("producer queue is full; retry later"),
        C::MessageSizeTooLarge | C::InvalidMessageSize => {
            Error::too_large("record is larger than the broker accepts")
        }
        C::UnknownTopic | C::UnknownTopicOrPartition => {
            Error::not_found("topic does not exist on the Kafka cluster")
        }
        C::InvalidTopic => Error::bad_request("topic name is not valid for Kafka"),
        C::Authentication | C::SaslAuthenticationFailed | C::SSL => {
            Error::unavailable("Kafka authentication failed; check the cluster credentials")
        }
        C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => {
            Error::unavailable("Kafka denied the write: not authorized for this topic")
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

/// A shared producer with its delivery deadline.
pub struct Producer {
    inner: ThreadedProducer<Context>,
    timeout: Duration,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A producer's complete librdkafka property set, which identifies it.
type Properties = BTreeMap<String, String>;

/// Live producers by their full property set; entries die with their last publisher.
static PRODUCERS: LazyLock<Mutex<HashMap<Properties, Weak<Producer>>>> =
    LazyLock::new(Default::default);

impl Producer {
    /// Returns the producer for these properties, creating it if no live publisher uses it yet.
    pub fn shared(
        properties: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<Arc<Producer>> {
        let mut producers = PRODUCERS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = producers.get(properties).and_then(Weak::upgrade) {
            return Ok(p);
        }
        producers.retain(|_, w| w.strong_count() > 0);
        let mut config = ClientConfig::new();
        for (k, v) in properties {
            config.set(k, v);
        }
        // Property names are safe to show; values may be secrets, and librdkafka's text names the property.
        let inner: ThreadedProducer<Context> = config
            .create_with_context(Context { timeout })
            .map_err(|e| {
                Error::bad_request(format!(
                    "config: kafka.properties: {}",
                    redact_creation_error(&e)
                ))
            })?;
        let producer = Arc::new(Producer { inner, timeout });
        producers.insert(properties.clone(), Arc::downgrade(&producer));
        Ok(producer)
    }

    /// Produces one record and waits for the broker's acknowledgement or the deadline.
    pub fn send(
        &self,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> Result<Delivery> {
        let (reply, answer) = mpsc::sync_channel(1);
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(reply)).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (k, v) in headers {
                owned = owned.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            record = record.headers(owned);
        }
        if let Err((e, _)) = self.inner.send(record) {
            return Err(match e.rdkafka_error_code() {
                Some(code) => produce_error(code),
                None => Error::internal(format!("Kafka produce failed: {e}")),
            });
        }
        // librdkafka reports every record by message.timeout.ms; the margin covers callback scheduling.
        match answer.recv_timeout(self.timeout + Duration::from_secs(5)) {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::timeout(format!(
                "no delivery report within {} ms; the record may or may not have been written",
                self.timeout.as_millis()
            ))),
        }
    }

    /// Waits until every queued record is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.inner.flush(timeout).map_err(|_| {
            Error::timeout(format!(
                "records still queued after {} ms",
                timeout.as_millis()
            ))
        })
    }
}

/// Names the offending property; its value may be a secret, so it is cut out of librdkafka's text.
fn redact_creation_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, description, key, value) => {
            let description = if value.is_empty() {
                description.clone()
            } else {
                description.replace(value.as_str(), "<value>")
            };
            format!("property `{key}`: {description}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = [("bootstrap.servers", "127.0.0.1:1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    }

    #[test]
    fn same_properties_share_one_producer() {
        let a = Producer::shared(
            &props(&[("client.id", "share-test")]),
            Duration::from_secs(1),
        )
        .unwrap();
        let b = Producer::shared(
            &props(&[("client.id", "share-test")]),
            Duration::from_secs(1),
        )
        .unwrap();
        let c =
            Producer::shared(&props(&[("client.id", "other")]), Duration::from_secs(1)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn bad_property_is_named_without_its_value() {
        let e = Producer::shared(
            &props(&[("sasl.password", "s3cret"), ("acks", "sometimes")]),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("acks"), "{}", e.message);
        assert!(
            !e.message.contains("sometimes") && !e.message.contains("s3cret"),
            "{}",
            e.message
        );
        let e = Producer::shared(&props(&[("no.such.property", "1")]), Duration::from_secs(1))
            .unwrap_err();
        assert!(e.message.contains("no.such.property"), "{}", e.message);
    }

    #[test]
    fn error_codes_map_to_http_statuses() {
        use crate::Status::*;
        assert_eq!(
            produce_error(RDKafkaErrorCode::QueueFull).status,
            Unavailable
        );
        assert_eq!(
            produce_error(RDKafkaErrorCode::MessageSizeTooLarge).status,
            PayloadTooLarge
        );
        assert_eq!(
            produce_error(RDKafkaErrorCode::UnknownTopicOrPartition).status,
            NotFound
        );
        assert_eq!(
            produce_error(RDKafkaErrorCode::SaslAuthenticationFailed).status,
            Unavailable
        );
        assert!(produce_error(RDKafkaErrorCode::SaslAuthenticationFailed)
            .message
            .contains("authentication failed"));
        assert_eq!(
            produce_error(RDKafkaErrorCode::InvalidRecord).status,
            InternalError
        );
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let t = Duration::from_millis(1500);
        let never_sent = delivery_error(
            &timed_out,
            rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED,
            t,
        );
        assert_eq!(never_sent.status, Unavailable);
        assert!(never_sent.message.contains("1500 ms"));
        let maybe = delivery_error(
            &timed_out,
            rd::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED,
            t,
        );
        assert_eq!(maybe.status, Timeout);
    }
}
