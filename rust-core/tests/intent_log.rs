//! The idempotency log (rust-core/src/idempotency.rs `IntentLog`, issue #21 step 2's building
//! block) against the real broker: two logs on one topic, as two gateway replicas would hold,
//! append intents for the same key; once each has read past its own intent, both see the key's
//! records in the same order (the earliest intent is the same for both); a log opened later sees
//! them too, as long as they are within its window.

mod common;

use std::time::{Duration, Instant};

use common::*;
use topicgate::config::Config;
use topicgate::idempotency::IntentLog;

#[test]
fn two_logs_agree_on_the_order_of_a_keys_intents() {
    let topic = unique("idemlog");
    let dir = schema_dir(&[]);
    let config = Config::from_json(&file_config(&dir, "")).unwrap();
    let window = Duration::from_secs(600);
    let a = IntentLog::open(&config, &topic, window).unwrap();
    let b = IntentLog::open(&config, &topic, window).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);

    // The log creates its topic itself (admin API), before anything is appended.
    let reader = topicgate::reader::Reader::new(&config).unwrap();
    while reader.partitions(&topic).is_err() {
        assert!(Instant::now() < deadline, "the log did not create its topic {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let key = b"route\x00Topic\x00k-1";
    // Each log's tail creates the topic (admin API) if it is missing, then follows it.
    let da = a.append(key, b"intent a").unwrap();
    let db = b.append(key, b"intent b").unwrap();
    let other = a.append(b"route\x00Topic\x00k-2", b"intent other").unwrap();
    assert_eq!(da.partition, db.partition, "one key, one partition");
    assert!(da.offset < db.offset);
    assert!(a.wait_read(da.partition, da.offset, deadline), "a did not read past its own intent");
    assert!(b.wait_read(db.partition, db.offset, deadline), "b did not read past its own intent");
    // b has read past its own intent, so it sees a's, which came first: both agree.
    let seen_by_b: Vec<_> = b.records(key).into_iter().map(|r| (r.offset, r.value)).collect();
    assert_eq!(seen_by_b, vec![(da.offset, b"intent a".to_vec()), (db.offset, b"intent b".to_vec())]);
    assert!(a.wait_read(db.partition, db.offset, deadline));
    assert_eq!(a.records(key), b.records(key));
    assert!(a.wait_read(other.partition, other.offset, deadline));
    assert_eq!(a.records(b"route\x00Topic\x00k-2").len(), 1);
    assert!(a.records(b"route\x00Topic\x00k-3").is_empty());

    // A log opened later (a restarted replica) reads the window back.
    let c = IntentLog::open(&config, &topic, window).unwrap();
    assert!(c.wait_read(db.partition, db.offset, deadline), "c did not read the window back");
    assert_eq!(c.records(key), a.records(key));
    // Kafka's own consumer reads the same records there.
    let java = read_back(&topic, da.partition, da.offset, 1);
    assert_eq!(java[0].value, b"intent a".to_vec());
}
