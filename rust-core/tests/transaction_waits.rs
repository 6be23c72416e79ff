//! Atomic batches that must wait: many more concurrent batches than transactional producers, and
//! a broker that stops answering (frozen with SIGSTOP). Every call answers by its deadline (the
//! transaction timeout unless the caller gives one) with 200 or a documented 503/504, every 200
//! batch is read back whole (read_committed), and no thread is left behind. This binary's tests
//! freeze the broker, so they run one at a time (a lock) and no other binary runs meanwhile.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use topicgate::producer::Placement;
use topicgate::{Batch, Delivery, Error, Publisher, Status};

const PRODUCERS: usize = 2;
/// Four times more batches at once than there are transactional producers.
const THREADS: usize = 4 * PRODUCERS;
const RECORDS: usize = 20;
/// `transactions.timeout_ms`, the deadline of `commit_batch`.
const TIMEOUT: Duration = Duration::from_millis(2000);
/// What an answer may take beyond its deadline (scheduling on a loaded 2-core machine).
const SLACK: Duration = Duration::from_millis(1500);

/// A batch's texts and its answer.
type Answer = (Vec<String>, Result<Vec<Delivery>, Error>);

/// One test at a time in this binary: they freeze the broker.
static BROKER: Mutex<()> = Mutex::new(());

/// Thaws the broker even if the test fails.
struct Frozen(String);

impl Frozen {
    fn freeze() -> Frozen {
        let pid = std::fs::read_to_string(repo().join(".run/kafka.pid"))
            .expect(".run/kafka.pid: start Kafka with make kafka-up")
            .trim()
            .to_owned();
        assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

fn batch(p: &Publisher, topic: &str, prefix: &str) -> (Batch, Vec<String>) {
    let sent: Vec<String> = (0..RECORDS).map(|i| format!("{prefix}r{i}")).collect();
    let mut b = Batch::new(topic).unwrap();
    for t in &sent {
        b.add(p, &format!(r#"{{"sample_message":"{t}"}}"#), &[], Some(b"k"), Placement::default()).unwrap();
    }
    (b, sent)
}

/// The process's thread count.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// Whether `e` is one of the documented answers of an atomic batch that did not commit.
fn documented(e: &Error) -> bool {
    let m = &e.message;
    match e.status {
        Status::Unavailable => m.contains("nothing written"),
        Status::Timeout => m.contains("either wholly written or not at all"),
        _ => false,
    }
}

/// `THREADS` threads commit `per_thread` batches each to `topic`, all at once; every answer is
/// checked against its deadline. Returns each batch's texts and answer.
fn commit_at_once(p: &Publisher, topic: &str, phase: &str, per_thread: usize) -> Vec<Answer> {
    std::thread::scope(|s| {
        let running: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|b| {
                            let (batch, sent) = batch(p, topic, &format!("{phase}t{t}b{b}"));
                            let started = Instant::now();
                            let answer = p.commit_batch(&batch);
                            let took = started.elapsed();
                            assert!(
                                took <= TIMEOUT + SLACK,
                                "{phase}: thread {t} batch {b} answered after {took:?}: {answer:?}"
                            );
                            if let Err(e) = &answer {
                                assert!(documented(e), "{phase}: thread {t} batch {b}: undocumented answer {e}");
                            }
                            (sent, answer)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let answers: Vec<_> = running.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let status = |a: &Result<Vec<Delivery>, Error>| a.as_ref().map_or_else(|e| e.status.code(), |_| 200);
        let mut counts = std::collections::BTreeMap::new();
        for (_, a) in &answers {
            *counts.entry(status(a)).or_insert(0) += 1;
        }
        eprintln!("{phase}: answers by status {counts:?}");
        answers
    })
}

/// Every 200 batch is read back whole from `topic`, and nothing of the others is visible.
fn assert_whole(topic: &str, answers: &[Answer]) {
    let committed: Vec<_> = answers.iter().filter_map(|(sent, a)| a.as_ref().ok().map(|ds| (sent, ds))).collect();
    let total: usize = committed.iter().map(|(sent, _)| sent.len()).sum();
    let partition = committed[0].1[0].partition;
    let got = read_back(topic, partition, 0, total);
    for (sent, ds) in committed {
        for (text, d) in sent.iter().zip(ds) {
            assert_eq!(d.partition, partition, "one key, one partition");
            let r = got.iter().find(|r| r.offset == d.offset).expect("a committed record is read back");
            assert_eq!(r.value, classic_bytes(text), "{topic} offset {}", d.offset);
        }
    }
}

#[test]
fn many_more_batches_than_producers_all_answer_by_their_deadline() {
    let _one = BROKER.lock().unwrap_or_else(|p| p.into_inner());
    let (busy, frozen_topic) = (unique("txnbusy"), unique("txnfrozen"));
    let dir = schema_dir(&[(&busy, CLASSIC_PROTO), (&frozen_topic, CLASSIC_PROTO)]);
    let extra = format!(
        r#","delivery_timeout_ms":10000,"transactions":{{"producers":{PRODUCERS},"timeout_ms":{}}}"#,
        TIMEOUT.as_millis()
    );
    let p = Publisher::new(&file_config(&dir, &extra)).unwrap();

    // Contention: 8 threads, 2 producers, a healthy broker.
    let mut answers = commit_at_once(&p, &busy, "busy", 5);
    let ok = answers.iter().filter(|(_, a)| a.is_ok()).count();
    assert!(ok >= THREADS, "most batches commit while the broker is healthy: {ok} of {}", answers.len());
    let baseline = threads();

    // The broker stops answering: every batch, waiting for a producer or for the broker, answers
    // 503 or 504 by its deadline.
    {
        let _frozen = Frozen::freeze();
        for (_, a) in commit_at_once(&p, &frozen_topic, "frozen", 1) {
            let e = a.expect_err("nothing commits while the broker is frozen");
            assert!(matches!(e.status, Status::Unavailable | Status::Timeout), "{e}");
        }
    }

    // Thawed: the producers come back (bounded), and the contention test passes again.
    let started = Instant::now();
    loop {
        let (b, sent) = batch(&p, &busy, &format!("thawed{}", started.elapsed().as_millis()));
        let answer = p.commit_batch(&b);
        let committed = answer.is_ok();
        answers.push((sent, answer));
        if committed {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no batch committed after thawing: {:?}", answers.last());
    }
    answers.extend(commit_at_once(&p, &busy, "after", 3));
    assert_whole(&busy, &answers);

    // The background work (finishing or dropping the producers of the frozen batches) ends.
    let deadline = Instant::now() + Duration::from_secs(30);
    while threads() > baseline + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(threads() <= baseline + 2, "threads left behind: {} now, {baseline} before the freeze", threads());
}

#[test]
fn a_commit_the_broker_holds_up_is_resumed_until_the_callers_deadline() {
    let _one = BROKER.lock().unwrap_or_else(|p| p.into_inner());
    let topic = unique("txnresume");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    // One producer; each commit attempt may take 1 s, the caller allows 10 s.
    let extra = r#","delivery_timeout_ms":10000,"transactions":{"producers":1,"timeout_ms":1000}"#;
    let p = Publisher::new(&file_config(&dir, extra)).unwrap();
    let (warm, warm_sent) = batch(&p, &topic, "warm");
    let mut answers = vec![(warm_sent, p.commit_batch(&warm))];
    assert!(answers[0].1.is_ok(), "{:?}", answers[0].1);

    let (held, held_sent) = batch(&p, &topic, "held");
    let started = Instant::now();
    let answer = std::thread::scope(|s| {
        let frozen = Frozen::freeze();
        let committing = s.spawn(|| p.commit_batch_within(&held, Duration::from_secs(10)));
        // Longer than one commit attempt, shorter than the caller's deadline.
        std::thread::sleep(Duration::from_millis(2500));
        drop(frozen);
        committing.join().unwrap()
    });
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(10) + SLACK, "answered after {took:?}");
    let ds = answer.as_ref().unwrap_or_else(|e| panic!("the commit was not resumed after the broker came back: {e}"));
    assert_eq!(ds.len(), RECORDS);
    answers.push((held_sent, answer));
    assert_whole(&topic, &answers);
}
