//! Recovery from a fatal librdkafka error (with idempotence on, e.g. a sequence desync after a
//! long outage): the producer is replaced, records it still held fail as not written, and new
//! records go to a fresh producer, while records it had already sent get their real outcome. The
//! fatal error is raised with librdkafka's own test hook (`rd_kafka_test_fatal_error`), against
//! the real broker.

mod common;

use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use topicgate::ffi::{tg_set_log_callback, tg_status};
use topicgate::producer::Producer;
use topicgate::{Config, Placement, Publisher, Record, Status};

static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_user_data: *mut c_void, level: i32, message: *const u8, len: usize) {
    let text = String::from_utf8_lossy(std::slice::from_raw_parts(message, len)).into_owned();
    LINES.lock().unwrap().push((level, text));
}

/// A config with its own `client.id`, so this test's publisher gets a producer of its own.
fn config(bootstrap: &str, dir: &std::path::Path, delivery_timeout_ms: u64) -> String {
    config_with(bootstrap, dir, delivery_timeout_ms, "")
}

/// `config` with more producer properties (`,"key":"value"…`).
fn config_with(bootstrap: &str, dir: &std::path::Path, delivery_timeout_ms: u64, properties: &str) -> String {
    format!(
        r#"{{"kafka":{{"bootstrap_servers":"{bootstrap}","properties":{{"client.id":"{}"{properties}}}}},"registry":{{"kind":"file","directory":"{}"}},"delivery_timeout_ms":{delivery_timeout_ms}}}"#,
        unique("fatal-test"),
        dir.display()
    )
}

/// The producer a publisher built from `config_json` shares (same properties, same instance).
fn producer_of(config_json: &str) -> Arc<Producer> {
    let config = Config::from_json(config_json).unwrap();
    Producer::shared(&config.producer_properties().unwrap(), config.delivery_timeout(), None).unwrap()
}

/// Log lines (level, text) that mention the fatal error raised with `marker`, once both places that
/// may log it have had their turn: the publishes (done when this is called) and the error
/// callback's check, which ends with a debug line naming the error (waited for, bounded).
fn lines_with(marker: &str) -> Vec<(i32, String)> {
    let matching = || -> Vec<(i32, String)> {
        LINES.lock().unwrap().iter().filter(|(_, l)| l.contains(marker)).cloned().collect()
    };
    wait_until("the error callback's check", || matching().iter().any(|(_, l)| l.contains("fatal-error check")));
    matching()
}

#[test]
fn after_a_fatal_error_new_records_go_to_a_fresh_producer() {
    assert_eq!(tg_set_log_callback(Some(collect), std::ptr::null_mut(), 4), tg_status::Ok);
    let topic = unique("fatal");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let cfg = config(&env("KAFKA_BOOTSTRAP"), &dir, 5000);
    let p = Publisher::new(&cfg).unwrap();
    let producer = producer_of(&cfg);
    let publish = |json: &str| p.publish(&Record { topic: &topic, json, headers: &[], key: None });

    let before = publish(r#"{"sample_message":"before"}"#).unwrap();
    assert_eq!(producer.replacements(), 0);
    let marker = unique("desync-marker");
    producer.raise_fatal_error_for_tests(&marker).unwrap();
    // Without the replacement every publish from here on was 503 "fatal error", forever.
    let mut after = Vec::new();
    for i in 0..5 {
        let json = format!(r#"{{"sample_message":"after-{i}"}}"#);
        after.push(publish(&json).unwrap_or_else(|e| panic!("publish {i} after the fatal error: {e}")));
    }
    assert_eq!(producer.replacements(), 1, "exactly one replacement, however many publishes followed");

    // Every acknowledged record is on the topic once, with the right bytes (one read per partition).
    let mut expected = vec![(before, classic_bytes("before"))];
    expected.extend(after.iter().enumerate().map(|(i, d)| (*d, classic_bytes(&format!("after-{i}")))));
    assert_eq!(records_on_topic(&topic), expected.len() as i64, "no duplicates, nothing extra");
    let mut partitions: Vec<i32> = expected.iter().map(|(d, _)| d.partition).collect();
    partitions.sort();
    partitions.dedup();
    for partition in partitions {
        let here: Vec<_> = expected.iter().filter(|(d, _)| d.partition == partition).collect();
        let first = here.iter().map(|(d, _)| d.offset).min().unwrap();
        let last = here.iter().map(|(d, _)| d.offset).max().unwrap();
        let got = read_back(&topic, partition, first, (last - first + 1) as usize);
        for (d, value) in here {
            let r = got.iter().find(|r| r.offset == d.offset).expect("acknowledged record is on the topic");
            assert_eq!(r.value, *value, "record at {}/{}", d.partition, d.offset);
        }
    }

    // Logged once as an error (librdkafka raises one fatal error per producer), not per publish.
    let errors: Vec<_> = lines_with(&marker).into_iter().filter(|(level, _)| *level == 1).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("fatal error"), "{errors:?}");
}

#[test]
fn a_record_still_queued_when_the_producer_fails_is_answered_not_written() {
    let topic = unique("fatal-queued");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    // Nothing listens there: the record stays queued in librdkafka, waiting for a broker.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = config(&format!("127.0.0.1:{dead}"), &dir, 30_000);
    let p = Publisher::new(&cfg).unwrap();
    let producer = producer_of(&cfg);
    // `start` returns once librdkafka has filed the record in its queue.
    let record = Record { topic: &topic, json: r#"{"sample_message":"queued"}"#, headers: &[], key: None };
    p.start(&record, Placement::default(), 1).unwrap();
    producer.raise_fatal_error_for_tests("queued-record test").unwrap();
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.is_empty() && Instant::now() < deadline {
        p.completions(&mut done, 8, Duration::from_millis(500));
    }
    assert_eq!(done.len(), 1, "the queued record is answered");
    let e = done[0].outcome.clone().unwrap_err();
    // Answered because of the fatal error (purged from the queue), not by the 30 s delivery timeout.
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("record not written") && e.message.contains("fatal"), "{e}");
    assert!(!e.message.contains("delivery timeout"), "{e}");
}

/// Thaws a frozen broker even if the test fails.
struct Frozen(String);

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0]).status();
    }
}

/// Waits (bounded) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A record the failed producer had already sent (in flight: written to the broker, not yet
/// acknowledged) keeps its real outcome, the broker's acknowledgement, instead of being purged
/// (504) when the failed producer is replaced. The record is held in flight by freezing the secure
/// test broker, which only this test of the binary uses (through its plaintext listener).
#[test]
fn a_record_in_flight_when_the_producer_fails_gets_its_true_answer() {
    assert_eq!(tg_set_log_callback(Some(collect), std::ptr::null_mut(), 4), tg_status::Ok);
    let bootstrap = env("KAFKA_SECURE_PLAINTEXT");
    let topic = unique("fatal-inflight");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    // librdkafka's "msg" debug lines say when a produce request is written.
    let cfg = config_with(&bootstrap, &dir, 30_000, r#","debug":"msg""#);
    let p = Publisher::new(&cfg).unwrap();
    let producer = producer_of(&cfg);
    let record = |text: &str| format!(r#"{{"sample_message":"{text}"}}"#);
    let sent =
        || LINES.lock().unwrap().iter().filter(|(_, l)| l.contains(&topic) && l.contains("Produce MessageSet")).count();
    // Warm up: metadata known, connection open, producer id assigned.
    let before = p.publish(&Record { topic: &topic, json: &record("before"), headers: &[], key: None }).unwrap();
    let sent_before = sent();

    let pid = std::fs::read_to_string(repo().join(".run/kafka-secure.pid")).expect(".run/kafka-secure.pid");
    let frozen = Frozen(pid.trim().to_owned());
    assert!(std::process::Command::new("kill").args(["-STOP", &frozen.0]).status().unwrap().success());
    p.start(&Record { topic: &topic, json: &record("in-flight"), headers: &[], key: None }, Placement::default(), 1)
        .unwrap();
    wait_until("the record's produce request", || sent() > sent_before);
    producer.raise_fatal_error_for_tests("in-flight record test").unwrap();
    wait_until("the replacement", || producer.replacements() == 1);
    drop(frozen);

    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.is_empty() && Instant::now() < deadline {
        p.completions(&mut done, 8, Duration::from_millis(500));
    }
    assert_eq!(done.len(), 1, "the record in flight is answered");
    let d =
        done[0].outcome.clone().unwrap_or_else(|e| panic!("the record in flight was answered {e}, not its outcome"));
    let r = &read_back_at(&bootstrap, &topic, d.partition, d.offset, 1)[0];
    assert_eq!(r.value, classic_bytes("in-flight"));
    // New records go to the fresh producer.
    let after = p.publish(&Record { topic: &topic, json: &record("after"), headers: &[], key: None }).unwrap();
    assert_eq!(read_back_at(&bootstrap, &topic, after.partition, after.offset, 1)[0].value, classic_bytes("after"));
    assert_ne!((before.partition, before.offset), (after.partition, after.offset));
}
