//! All-or-nothing batches: each batch is one Kafka transaction on one of a publisher's few
//! transactional producers (`config::TransactionsConfig` names them and explains their ids).
//!
//! A producer runs one transaction at a time, so each sits behind its own lock; a batch takes the
//! next one round-robin. A producer is created (and `init_transactions` run, which fences an
//! earlier instance with the same id and aborts what it left open) on its first batch. After a
//! failure the transaction is aborted; a producer that cannot abort, or hit a fatal error, is
//! dropped and its id starts afresh on the next batch, which aborts whatever is still open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer as _, ThreadedProducer};

use crate::config::TransactionsConfig;
use crate::delivery::Delivery;
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use crate::producer::{self, Context, Properties, Reply};
use crate::security::AuthConfig;

/// A publisher's transactional producers, created on first use.
pub struct Transactions {
    properties: Properties,
    auth: Option<AuthConfig>,
    delivery_timeout: Duration,
    timeout: Duration,
    ids: Result<Vec<String>>,
    slots: Vec<Mutex<Option<ThreadedProducer<Context>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions").field("ids", &self.ids).finish_non_exhaustive()
    }
}

impl Transactions {
    /// Transactional producers with these properties, as `config` describes; nothing connects yet.
    pub fn new(
        properties: Properties,
        auth: Option<AuthConfig>,
        delivery_timeout: Duration,
        config: &TransactionsConfig,
    ) -> Transactions {
        Transactions {
            properties,
            auth,
            delivery_timeout,
            timeout: Duration::from_millis(config.timeout_ms),
            // Kept as the error, if any, for the first all-or-nothing batch to report.
            ids: config.transactional_ids(),
            slots: (0..config.producers).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Writes `records` to `topic` in one transaction: `Ok` (each record's delivery, in order) only
    /// after the commit; on any error the transaction is aborted and nothing becomes visible to a
    /// `read_committed` consumer, except where the error says the commit's outcome is unknown.
    pub fn write(&self, topic: &str, records: &[Encoded]) -> Result<Vec<Delivery>> {
        let ids = self.ids.as_ref().map_err(Clone::clone)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[n].lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.start(&ids[n])?);
        }
        let producer = slot.as_ref().expect("set above");
        let outcome = self.run(producer, topic, records);
        if let Err(failure) = &outcome {
            let aborted = !failure.fatal && producer.abort_transaction(self.timeout).is_ok();
            if !aborted {
                log::warn!(
                    target: "topicgate::kafka",
                    "transactional producer {} dropped after a failed transaction; the next batch starts it afresh",
                    ids[n]
                );
                *slot = None;
            }
        }
        outcome.map_err(|f| f.error)
    }

    fn start(&self, id: &str) -> Result<ThreadedProducer<Context>> {
        let producer =
            producer::Producer::transactional(&self.properties, self.delivery_timeout, self.auth.as_ref(), id)?;
        producer.init_transactions(self.timeout).map_err(|e| {
            Error::unavailable(format!(
                "Kafka transactions unavailable (transactional id {id}): {}; nothing written",
                reason(&e)
            ))
        })?;
        Ok(producer)
    }

    fn run(
        &self,
        producer: &ThreadedProducer<Context>,
        topic: &str,
        records: &[Encoded],
    ) -> std::result::Result<Vec<Delivery>, Failure> {
        producer.begin_transaction().map_err(|e| Failure::before_commit(&e))?;
        let mut answers = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let (reply, answer) = mpsc::sync_channel(1);
            let record =
                producer::base_record(topic, &r.value, r.key.as_deref(), &r.headers, r.placement, Reply::Wait(reply));
            if let Err((e, _)) = producer.send(record) {
                let e = match e.rdkafka_error_code() {
                    Some(code) => producer::produce_error(code),
                    None => Error::internal(format!("Kafka produce failed: {e}")),
                };
                return Err(Failure {
                    fatal: false,
                    error: Error {
                        message: format!(
                            "the batch's record {}: {}; the batch was aborted, nothing written",
                            i + 1,
                            e.message
                        ),
                        ..e
                    },
                });
            }
            answers.push(answer);
        }
        // The commit flushes: once it succeeded every record has its delivery report.
        producer.commit_transaction(self.timeout).map_err(|e| Failure::at_commit(&e))?;
        answers
            .into_iter()
            .map(|a| match a.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(d)) => Ok(d),
                // Committed, so written; a failed report here would contradict the commit.
                Ok(Err(e)) => Err(Error::internal(format!("committed, but a record reported: {}", e.message))),
                Err(_) => Err(Error::internal("committed, but a delivery report is missing")),
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|error| Failure { fatal: false, error })
    }
}

/// A failed transaction: why, and whether its producer is beyond use (fatal error).
struct Failure {
    fatal: bool,
    error: Error,
}

impl Failure {
    fn before_commit(e: &KafkaError) -> Failure {
        Failure {
            fatal: is_fatal(e),
            error: Error::unavailable(format!("Kafka transaction failed: {}; nothing written", reason(e))),
        }
    }

    fn at_commit(e: &KafkaError) -> Failure {
        let error = match e {
            // A retriable commit error (a timeout) means the commit request may have reached the
            // coordinator: its outcome is unknown. Anything else ends in an abort.
            KafkaError::Transaction(t) if t.is_retriable() && !t.txn_requires_abort() => Error::timeout(format!(
                "Kafka transaction commit did not complete ({}); the batch is either wholly written or not at all",
                reason(e)
            )),
            _ => Error::unavailable(format!(
                "Kafka transaction failed at commit: {}; aborted, nothing written",
                reason(e)
            )),
        };
        Failure { fatal: is_fatal(e), error }
    }
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

fn reason(e: &KafkaError) -> String {
    match e {
        KafkaError::Transaction(t) => t.to_string(),
        other => other.to_string(),
    }
}
