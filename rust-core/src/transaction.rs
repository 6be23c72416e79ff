//! All-or-nothing batches: each batch is one Kafka transaction on one of a few transactional
//! producers (`config::TransactionsConfig` names them and explains their ids).
//!
//! A producer runs one transaction at a time, so each sits behind its own lock; a batch takes the
//! next one round-robin. A producer is created (and `init_transactions` run, which fences an
//! earlier instance with the same id and aborts what it left open) on its first batch. After a
//! failure the transaction is aborted; a producer that cannot abort, or hit a fatal error, is
//! dropped and its id starts afresh on the next batch, which aborts whatever is still open.
//!
//! The producers are process-global, like the shared producers: publishers whose Kafka settings
//! (the producer property set, `kafka.auth`, `transactions`) are the same share one set, whatever
//! their schema settings. Differently configured sets get different ids: the `tag` in them is a
//! hash of those settings, secrets left out. Two live sets may not claim the same ids (settings
//! that differ only in a secret): the second publisher is refused.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer as _, ThreadedProducer};

use crate::config::TransactionsConfig;
use crate::delivery::Delivery;
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use crate::producer::{self, Context, Properties, Reply};
use crate::security::AuthConfig;

/// A set of transactional producers, created on first use; shared by the publishers with the
/// same Kafka settings.
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

/// Live sets of transactional producers by their ids.
static SETS: LazyLock<Mutex<HashMap<Vec<String>, Weak<Transactions>>>> = LazyLock::new(Default::default);

impl Transactions {
    /// The transactional producers for these settings: those of a live publisher with the same
    /// settings, else a new set (nothing connects yet). A live set with the same ids but other
    /// settings is a 400: the two would fence each other.
    pub fn shared(
        properties: Properties,
        auth: Option<AuthConfig>,
        delivery_timeout: Duration,
        config: &TransactionsConfig,
    ) -> Result<Arc<Transactions>> {
        // The ids may fail (no host name); that error is kept for the first all-or-nothing batch.
        let ids = config.transactional_ids(&settings_tag(&properties, auth.as_ref(), config));
        let fresh = Transactions {
            properties,
            auth,
            delivery_timeout,
            timeout: Duration::from_millis(config.timeout_ms),
            ids,
            slots: (0..config.producers).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        };
        let Ok(ids) = fresh.ids.clone() else {
            return Ok(Arc::new(fresh));
        };
        let mut sets = SETS.lock().unwrap_or_else(|p| p.into_inner());
        sets.retain(|_, w| w.strong_count() > 0);
        if let Some(live) = sets.get(&ids).and_then(Weak::upgrade) {
            if live.same_settings(&fresh) {
                return Ok(live);
            }
            return Err(Error::bad_request(format!(
                "config: transactions.id_prefix: another publisher in this process uses the transactional ids {}-… \
                 with other Kafka settings (they differ only in a secret); give one of them its own transactions.id_prefix",
                ids[0].strip_suffix("-0").unwrap_or(&ids[0])
            )));
        }
        let set = Arc::new(fresh);
        sets.insert(ids, Arc::downgrade(&set));
        Ok(set)
    }

    fn same_settings(&self, other: &Transactions) -> bool {
        self.properties == other.properties
            && format!("{:?}", self.auth) == format!("{:?}", other.auth)
            && self.delivery_timeout == other.delivery_timeout
            && self.timeout == other.timeout
            && self.slots.len() == other.slots.len()
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

/// Names a set's Kafka settings in its transactional ids: 8 hex digits of an FNV-1a hash of the
/// producer property set (values of secret properties left out), `kafka.auth` (secrets print as
/// `***`) and the `transactions` settings other than the id's own parts. Stable across restarts
/// and builds: it changes only when those settings do.
fn settings_tag(properties: &Properties, auth: Option<&AuthConfig>, config: &TransactionsConfig) -> String {
    let mut text = String::new();
    for (key, value) in properties {
        let secret = ["password", "secret", ".pem", "oauthbearer.config"].iter().any(|s| key.contains(s));
        let _ = writeln!(text, "{key}={}", if secret { "***" } else { value });
    }
    let _ = writeln!(text, "auth={auth:?}");
    let _ = writeln!(text, "producers={} timeout_ms={}", config.producers, config.timeout_ms);
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{:08x}", (hash ^ (hash >> 32)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Properties {
        let mut p: Properties = [("bootstrap.servers", "b:1"), ("acks", "all")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        p
    }

    #[test]
    fn the_tag_is_stable_and_names_the_settings_but_no_secret() {
        let t = TransactionsConfig::default();
        let tag = settings_tag(&props(&[]), None, &t);
        // A fixed value: the ids must not change between builds or releases for the same settings.
        assert_eq!(tag, "8d883ad4");
        assert_ne!(tag, settings_tag(&props(&[("linger.ms", "2")]), None, &t));
        assert_ne!(tag, settings_tag(&props(&[]), None, &TransactionsConfig { producers: 3, ..t.clone() }));
        let secret = |v: &str| settings_tag(&props(&[("sasl.password", v), ("ssl.key.pem", v)]), None, &t);
        assert_eq!(secret("one"), secret("two"));
        let ids = TransactionsConfig { replica_id: "gw-0".into(), ..t }.transactional_ids(&tag).unwrap();
        assert_eq!(ids, [format!("topicgate-gw-0-{tag}-0"), format!("topicgate-gw-0-{tag}-1")]);
    }

    #[test]
    fn same_settings_share_one_set_and_a_clash_of_ids_is_refused() {
        let t = TransactionsConfig { replica_id: "share-test".into(), ..TransactionsConfig::default() };
        let timeout = Duration::from_secs(1);
        let a = Transactions::shared(props(&[("sasl.password", "x")]), None, timeout, &t).unwrap();
        let b = Transactions::shared(props(&[("sasl.password", "x")]), None, timeout, &t).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = Transactions::shared(props(&[("linger.ms", "3")]), None, timeout, &t).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_ne!(a.ids, other.ids);
        let e = Transactions::shared(props(&[("sasl.password", "y")]), None, timeout, &t).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("transactions.id_prefix"), "{}", e.message);
        // Gone with its last publisher: the ids are free again.
        drop((a, b));
        Transactions::shared(props(&[("sasl.password", "y")]), None, timeout, &t).unwrap();
    }
}
