//! All-or-nothing batches: each batch is one Kafka transaction on one of a few transactional
//! producers (`config::TransactionsConfig` names them and explains their ids).
//!
//! A producer runs one transaction at a time. A batch waits for a free one, first come first
//! served, until its deadline (503 after it). A producer is created (and `init_transactions` run,
//! which fences an earlier instance with the same id and aborts what it left open) on its first
//! batch. The commit is resumed, as librdkafka documents, while it times out retriably and the
//! deadline allows; a commit still unfinished at the deadline is answered 504 (outcome unknown)
//! and resumed in the background, never aborted (invalid in that state). After any other failure
//! the transaction is aborted, in the background if the deadline has come; the producer is free
//! again once its transaction is finished. A producer that cannot finish it, or hit a fatal error,
//! is dropped and its id starts afresh on the next batch, which aborts whatever is still open.
//!
//! The producers are process-global, like the shared producers: publishers whose Kafka settings
//! (the producer property set, `kafka.auth`, `transactions`) are the same share one set, whatever
//! their schema settings. Differently configured sets get different ids: the `tag` in them is a
//! hash of those settings, secrets left out. Two live sets with the same ids (settings that
//! differ only in a secret) may not both use them: the second to run a transaction is refused.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer as _, ThreadedProducer};

use crate::config::TransactionsConfig;
use crate::delivery::Delivery;
use crate::encoded::Encoded;
use crate::error::{Error, Result, Status};
use crate::producer::{self, Context, Properties, Reply};
use crate::security::AuthConfig;

/// Pause between two attempts of a commit or abort that failed retriably (librdkafka: "preferably
/// after a shorter grace period (to avoid busy-looping)").
const RETRY_PAUSE: Duration = Duration::from_millis(50);

type TxnProducer = ThreadedProducer<Context>;

/// A set of transactional producers, created on first use; shared by the publishers with the
/// same Kafka settings.
pub struct Transactions {
    properties: Properties,
    auth: Option<AuthConfig>,
    delivery_timeout: Duration,
    timeout: Duration,
    ids: Result<Vec<String>>,
    pool: Mutex<Pool>,
    /// Signalled when a producer is given back or a waiter leaves the line.
    freed: Condvar,
    /// This set, for the background threads that finish a transaction and give its producer back.
    me: Weak<Transactions>,
    /// Whether an authorization refusal (403) was logged: once per set, not per batch.
    denied_logged: AtomicBool,
    /// Whether this set uses its ids (it ran, or began, a transaction); see [`Transactions::claim`].
    claimed: AtomicBool,
}

/// The producers and the batches waiting for one.
struct Pool {
    /// Producer n's slot: `Idle` with the producer (`None`: not created yet, or dropped), or `Busy`.
    slots: Vec<Slot>,
    /// Tickets of the batches waiting, in arrival order: the first one takes the next free producer.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

enum Slot {
    Idle(Option<TxnProducer>),
    Busy,
}

/// Producer n, taken from the pool for one transaction; given back with [`Transactions::give_back`].
struct Lease {
    n: usize,
    producer: Option<TxnProducer>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions").field("ids", &self.ids).finish_non_exhaustive()
    }
}

/// Live sets of transactional producers by their ids; more than one only when their settings
/// differ in a secret alone, and then only the first to run a transaction may use the ids.
static SETS: LazyLock<Mutex<HashMap<Vec<String>, SameIds>>> = LazyLock::new(Default::default);

/// The live sets with the same ids.
type SameIds = Vec<Weak<Transactions>>;

impl Transactions {
    /// The transactional producers for these settings: those of a live publisher with the same
    /// settings, else a new set (nothing connects yet).
    pub fn shared(
        properties: Properties,
        auth: Option<AuthConfig>,
        delivery_timeout: Duration,
        config: &TransactionsConfig,
    ) -> Result<Arc<Transactions>> {
        // The ids may fail (no host name); that error is kept for the first all-or-nothing batch.
        let ids = config.transactional_ids(&settings_tag(&properties, auth.as_ref(), config));
        let fresh = |me: &Weak<Transactions>| Transactions {
            properties: properties.clone(),
            auth: auth.clone(),
            delivery_timeout,
            timeout: Duration::from_millis(config.timeout_ms),
            ids: ids.clone(),
            pool: Mutex::new(Pool {
                slots: (0..config.producers).map(|_| Slot::Idle(None)).collect(),
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
            freed: Condvar::new(),
            me: me.clone(),
            denied_logged: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
        };
        let Ok(ids) = ids.clone() else {
            return Ok(Arc::new_cyclic(fresh));
        };
        let mut sets = SETS.lock().unwrap_or_else(|p| p.into_inner());
        sets.retain(|_, same_ids| {
            same_ids.retain(|w| w.strong_count() > 0);
            !same_ids.is_empty()
        });
        let set = Arc::new_cyclic(fresh);
        let same_ids = sets.entry(ids).or_default();
        if let Some(live) = same_ids.iter().filter_map(Weak::upgrade).find(|live| live.same_settings(&set)) {
            return Ok(live);
        }
        same_ids.push(Arc::downgrade(&set));
        Ok(set)
    }

    /// Makes this set the one that uses its ids, before its first transaction: a live set with the
    /// same ids (settings that differ only in a secret) that already uses them would be fenced by
    /// this one and fence it back, so that is a 400.
    fn claim(&self, ids: &[String]) -> Result<()> {
        if self.claimed.load(Ordering::Acquire) {
            return Ok(());
        }
        let sets = SETS.lock().unwrap_or_else(|p| p.into_inner());
        let others = sets.get(ids).into_iter().flatten().filter_map(Weak::upgrade);
        if others.filter(|other| !std::ptr::eq(&**other, self)).any(|other| other.claimed.load(Ordering::Acquire)) {
            return Err(Error::bad_request(format!(
                "config: transactions.id_prefix: another publisher in this process already uses the transactional ids \
                 {}-… with other Kafka settings (they differ only in a secret); give one of them its own \
                 transactions.id_prefix",
                ids[0].strip_suffix("-0").unwrap_or(&ids[0])
            )));
        }
        self.claimed.store(true, Ordering::Release);
        Ok(())
    }

    fn same_settings(&self, other: &Transactions) -> bool {
        self.properties == other.properties
            && format!("{:?}", self.auth) == format!("{:?}", other.auth)
            && self.delivery_timeout == other.delivery_timeout
            && self.timeout == other.timeout
    }

    /// Writes `records` to `topic` in one transaction, answering by `deadline`: `Ok` (each
    /// record's delivery, in order) only after the commit; on an error nothing becomes visible to
    /// a `read_committed` consumer, except where the error (504) says the commit's outcome is
    /// unknown. Waiting for a free producer past the deadline is a 503.
    pub fn write(&self, topic: &str, records: &[Encoded], deadline: Instant) -> Result<Vec<Delivery>> {
        let written = self.write_once(topic, records, deadline);
        if let Err(e) = &written {
            if e.status == Status::Forbidden && !self.denied_logged.swap(true, Ordering::AcqRel) {
                log::error!(
                    target: "topicgate::kafka",
                    "Kafka authorization failed for an atomic batch to topic `{topic}`: {}; batches the cluster \
                     refuses are answered 403 until its ACLs allow them (logged once per set of transactional producers)",
                    e.message
                );
            }
        }
        written
    }

    fn write_once(&self, topic: &str, records: &[Encoded], deadline: Instant) -> Result<Vec<Delivery>> {
        let ids = self.ids.as_ref().map_err(Clone::clone)?;
        self.claim(ids)?;
        let mut lease = self.take(deadline)?;
        let producer = match lease.producer.take() {
            Some(producer) => producer,
            None => match self.start(&ids[lease.n], deadline) {
                Ok(producer) => producer,
                Err(e) => {
                    self.give_back(lease);
                    return Err(e);
                }
            },
        };
        let outcome = self.run(&producer, topic, records, deadline);
        let lease = Lease { n: lease.n, producer: Some(producer) };
        match outcome {
            Ok(deliveries) => {
                self.give_back(lease);
                Ok(deliveries)
            }
            Err(Failure { error, then }) => {
                self.finish(lease, then, deadline);
                Err(error)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits in line for a free producer until `deadline`; a created one is preferred.
    fn take(&self, deadline: Instant) -> Result<Lease> {
        let mut pool = self.lock();
        let ticket = pool.next_ticket;
        pool.next_ticket += 1;
        pool.waiting.push_back(ticket);
        loop {
            if pool.waiting.front() == Some(&ticket) {
                let idle = |s: &Slot, created: bool| matches!(s, Slot::Idle(p) if p.is_some() == created);
                let free = (pool.slots.iter().position(|s| idle(s, true)))
                    .or_else(|| pool.slots.iter().position(|s| idle(s, false)));
                if let Some(n) = free {
                    pool.waiting.pop_front();
                    let Slot::Idle(producer) = std::mem::replace(&mut pool.slots[n], Slot::Busy) else {
                        unreachable!("an idle slot was chosen")
                    };
                    // The next in line may find another free producer.
                    self.freed.notify_all();
                    return Ok(Lease { n, producer });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                pool.waiting.retain(|t| *t != ticket);
                self.freed.notify_all();
                let busy = pool.slots.len();
                return Err(Error::unavailable(format!(
                    "Kafka transactions busy: no transactional producer became free within the batch's deadline \
                     (all {busy} in use, transactions.producers); nothing written; retry later"
                )));
            }
            pool = self.freed.wait_timeout(pool, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Returns a producer to the pool (`None`: dropped, its id starts afresh on the next batch).
    fn give_back(&self, lease: Lease) {
        self.lock().slots[lease.n] = Slot::Idle(lease.producer);
        self.freed.notify_all();
    }

    /// Drops `lease`'s producer, logging why, and frees its slot. Off the caller's thread: dropping
    /// a librdkafka producer purges, flushes (up to 500 ms) and joins its threads.
    fn discard(&self, mut lease: Lease, why: &str) {
        if let (Some(producer), Ok(ids)) = (lease.producer.take(), &self.ids) {
            log::warn!(
                target: "topicgate::kafka",
                "transactional producer {} dropped ({why}); the next batch starts it afresh",
                ids[lease.n]
            );
            producer::drop_in_background(producer);
        }
        self.give_back(lease);
    }

    fn start(&self, id: &str, deadline: Instant) -> Result<TxnProducer> {
        let producer =
            producer::Producer::transactional(&self.properties, self.delivery_timeout, self.auth.as_ref(), id)?;
        let time = self.timeout.min(deadline.saturating_duration_since(Instant::now()));
        if let Err(e) = producer.init_transactions(time) {
            producer::drop_in_background(producer);
            let what = format!("Kafka transactions unavailable (transactional id {id}): {}", reason(&e));
            return Err(refusal(&e, what, "nothing written"));
        }
        Ok(producer)
    }

    fn run(
        &self,
        producer: &TxnProducer,
        topic: &str,
        records: &[Encoded],
        deadline: Instant,
    ) -> std::result::Result<Vec<Delivery>, Failure> {
        producer.begin_transaction().map_err(|e| Failure::before_commit(&e))?;
        let mut answers = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let (reply, answer) = mpsc::sync_channel(1);
            let record =
                producer::base_record(topic, &r.value, r.key.as_deref(), &r.headers, r.placement, Reply::Wait(reply));
            if let Err((e, _)) = producer.send(record) {
                let e = match e.rdkafka_error_code() {
                    Some(code) => producer::produce_error(code, r.placement.partition),
                    None => Error::internal(format!("Kafka produce failed: {e}")),
                };
                return Err(Failure {
                    then: Then::Abort,
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
        self.commit(producer, deadline)?;
        // Committed, so flushed: every record has had its delivery report.
        answers
            .into_iter()
            .map(|a| match a.recv_timeout(left(deadline).max(Duration::from_millis(100))) {
                Ok(Ok(d)) => Ok(d),
                // Committed, so written; a failed report here would contradict the commit.
                Ok(Err(e)) => Err(Error::internal(format!("committed, but a record reported: {}", e.message))),
                Err(_) => Err(Error::internal("committed, but a delivery report is missing")),
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|error| Failure { then: Then::GiveBack, error })
    }

    /// Commits, resuming the commit while it fails retriably (a timeout: the commit goes on in
    /// the background, and librdkafka allows calling it again) and the deadline allows. Each
    /// attempt takes at most `transactions.timeout_ms`.
    fn commit(&self, producer: &TxnProducer, deadline: Instant) -> std::result::Result<(), Failure> {
        // Whether rd_kafka_commit_transaction ran: rust-rdkafka flushes first and returns the
        // flush's timeout without calling it.
        let mut commit_called = false;
        loop {
            let e = match producer.commit_transaction(self.timeout.min(left(deadline))) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let retriable = match &e {
                KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut) => true,
                KafkaError::Transaction(t) => {
                    commit_called = true;
                    t.is_retriable() && !t.txn_requires_abort() && !t.is_fatal()
                }
                _ => false,
            };
            if !retriable {
                return Err(Failure::at_commit(&e));
            }
            if left(deadline) > RETRY_PAUSE {
                std::thread::sleep(RETRY_PAUSE);
                continue;
            }
            let ms = self.timeout.as_millis();
            return Err(match commit_called {
                // The commit request may have reached the coordinator: the outcome is unknown.
                true => Failure {
                    then: Then::Resume,
                    error: Error::timeout(format!(
                        "Kafka transaction commit did not complete by the batch's deadline ({}); \
                         the batch is either wholly written or not at all",
                        reason(&e)
                    )),
                },
                // Not yet asked to commit: aborting it is allowed, and final.
                false => Failure {
                    then: Then::Abort,
                    error: Error::unavailable(format!(
                        "Kafka transaction did not complete by the batch's deadline: its records were not all \
                         delivered (each attempt up to transactions.timeout_ms {ms} ms); aborted, nothing written"
                    )),
                },
            });
        }
    }

    /// Ends `lease`'s transaction after a failure, as `then` says, and gives its producer back
    /// (or drops it). Done here while `deadline` leaves time; what remains is done in the
    /// background, so that the batch is answered by its deadline.
    fn finish(&self, lease: Lease, then: Then, deadline: Instant) {
        let then = match then {
            Then::GiveBack => return self.give_back(lease),
            Then::Drop => return self.discard(lease, "fatal error"),
            Then::Abort if left(deadline) > Duration::ZERO => {
                let producer = lease.producer.as_ref().expect("a lease being finished has its producer");
                match producer.abort_transaction(self.timeout.min(left(deadline))) {
                    Ok(()) => return self.give_back(lease),
                    Err(KafkaError::Transaction(t)) if t.is_retriable() && !t.is_fatal() => Then::Abort,
                    Err(e) => return self.discard(lease, &format!("abort failed: {}", reason(&e))),
                }
            }
            other => other,
        };
        let Some(me) = self.me.upgrade() else {
            return self.discard(lease, "its publisher is gone");
        };
        let spawned = std::thread::Builder::new()
            .name("topicgate-txn-finish".to_owned())
            .spawn(move || me.finish_in_background(lease, then));
        if let Err(e) = spawned {
            log::warn!(target: "topicgate::kafka", "cannot start a thread to finish a transaction ({e})");
        }
    }

    /// Resumes the commit (`Then::Resume`; an abortable failure turns it into an abort) or the
    /// abort for up to `transactions.timeout_ms`, then gives the producer back, or drops it when
    /// the transaction could not be finished.
    fn finish_in_background(&self, mut lease: Lease, mut then: Then) {
        let until = Instant::now() + self.timeout;
        let id = self.ids.as_ref().map(|ids| ids[lease.n].clone()).unwrap_or_default();
        let producer = lease.producer.take().expect("a lease being finished has its producer");
        let result = loop {
            let attempt = match then {
                Then::Resume => producer.commit_transaction(left(until)),
                _ => producer.abort_transaction(left(until)),
            };
            match attempt {
                Ok(()) => break Ok(()),
                Err(KafkaError::Transaction(t)) if then == Then::Resume && t.txn_requires_abort() && !t.is_fatal() => {
                    log::warn!(target: "topicgate::kafka", "transaction on {id} answered 504 failed at commit after all ({t}); aborting it");
                    then = Then::Abort;
                }
                Err(e) => {
                    let retriable = matches!(&e, KafkaError::Transaction(t) if t.is_retriable() && !t.is_fatal())
                        || matches!(e, KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
                    if !retriable || left(until) <= RETRY_PAUSE {
                        break Err(e);
                    }
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        };
        lease.producer = Some(producer);
        match (result, then) {
            (Ok(()), Then::Resume) => {
                log::info!(target: "topicgate::kafka", "transaction on {id} answered 504 was committed after all");
                self.give_back(lease);
            }
            (Ok(()), _) => self.give_back(lease),
            (Err(e), Then::Resume) => {
                self.discard(lease, &format!("a commit answered 504 did not finish: {}", reason(&e)))
            }
            (Err(e), _) => self.discard(lease, &format!("abort failed: {}", reason(&e))),
        }
    }
}

/// Time left until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// A failed transaction: why, and what becomes of it and its producer.
struct Failure {
    then: Then,
    error: Error,
}

/// What follows a failed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Nothing to finish (committed): the producer is free again.
    GiveBack,
    /// Abort it, then free the producer.
    Abort,
    /// Resume the commit (its outcome is unknown), then free the producer.
    Resume,
    /// The producer is beyond use (fatal error): drop it.
    Drop,
}

impl Failure {
    fn before_commit(e: &KafkaError) -> Failure {
        Failure {
            then: if is_fatal(e) { Then::Drop } else { Then::Abort },
            error: refusal(e, format!("Kafka transaction failed: {}", reason(e)), "nothing written"),
        }
    }

    /// A commit that failed for good (not retriably): it ends in an abort.
    fn at_commit(e: &KafkaError) -> Failure {
        Failure {
            then: if is_fatal(e) { Then::Drop } else { Then::Abort },
            error: refusal(e, format!("Kafka transaction failed at commit: {}", reason(e)), "aborted, nothing written"),
        }
    }
}

/// A transaction that wrote nothing (`outcome`) because `what` happened: 403 if the cluster's ACLs
/// refused it (a configuration fault), else 503.
fn refusal(e: &KafkaError, what: String, outcome: &str) -> Error {
    match e.rdkafka_error_code().and_then(producer::denied) {
        Some(denied) => Error::forbidden(format!(
            "{what}: {denied}; check the cluster's ACLs for the gateway's principal; {outcome}"
        )),
        None => Error::unavailable(format!("{what}; {outcome}")),
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
    fn same_settings_share_one_set_and_a_clash_of_ids_is_refused_at_the_first_batch() {
        let t = TransactionsConfig { replica_id: "share-test".into(), ..TransactionsConfig::default() };
        let timeout = Duration::from_secs(1);
        let a = Transactions::shared(props(&[("sasl.password", "x")]), None, timeout, &t).unwrap();
        let b = Transactions::shared(props(&[("sasl.password", "x")]), None, timeout, &t).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = Transactions::shared(props(&[("linger.ms", "3")]), None, timeout, &t).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_ne!(a.ids, other.ids);
        // Settings that differ only in a secret: the same ids, two sets; the first to run a
        // transaction uses the ids, the other is refused at its first batch.
        let rotated = Transactions::shared(props(&[("sasl.password", "y")]), None, timeout, &t).unwrap();
        assert!(!Arc::ptr_eq(&a, &rotated));
        let ids = a.ids.clone().unwrap();
        assert_eq!(rotated.ids.as_ref().unwrap(), &ids);
        a.claim(&ids).unwrap();
        let e = rotated.claim(&ids).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        assert!(e.message.contains("transactions.id_prefix"), "{}", e.message);
        b.claim(&ids).unwrap();
        // Gone with its last publisher: the ids are free again.
        drop((a, b));
        rotated.claim(&ids).unwrap();
    }
}
