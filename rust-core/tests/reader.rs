//! The reader (rust-core/src/reader.rs) against the real broker: records published through the
//! Rust API are read back by range, from a time, and found by a header value, the same records
//! Kafka's own Java consumer reads (common::read_back).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use topicgate::config::Config;
use topicgate::reader::{Range, Reader};
use topicgate::{Publisher, Record};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn publish(p: &Publisher, topic: &str, msg: &str, key: &str, header: Option<(&str, &str)>) -> topicgate::Delivery {
    let h: Vec<topicgate::headers::Header> =
        header.into_iter().map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec())).collect();
    let json = format!(r#"{{"sample_message":"{msg}"}}"#);
    p.publish(&Record { topic, json: &json, headers: &h, key: Some(key.as_bytes()) }).unwrap()
}

#[test]
fn reads_ranges_from_times_and_finds_a_record_by_header() {
    let topic = unique("reader");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let text = file_config(&dir, "");
    let p = Publisher::new(&text).unwrap();
    let reader = Reader::new(&Config::from_json(&text).unwrap()).unwrap();

    let before: Vec<_> = (0..5).map(|i| publish(&p, &topic, &format!("early{i}"), "k", None)).collect();
    std::thread::sleep(Duration::from_millis(20)); // a later timestamp than every early record
    let since = now_ms();
    let marked = publish(&p, &topic, "marked", "k", Some(("Idempotency-Key", "abc")));
    publish(&p, &topic, "late", "other-key", Some(("Idempotency-Key", "abd")));

    // One key, one partition: the range holds the early records in order, as Kafka's consumer reads them.
    let partition = before[0].partition;
    assert!(before.iter().all(|d| d.partition == partition));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let range = Range { partition, from: before[0].offset, until: Some(before[4].offset + 1) };
    assert!(reader
        .read(&topic, &[range], deadline, |r| {
            got.push(r);
            true
        })
        .unwrap());
    // The end as the fetch saw it, without asking the broker again: the offset after the last record.
    assert_eq!(reader.cached_end(&topic, partition), Some(reader.end_offset(&topic, partition).unwrap()));
    let java = read_back(&topic, partition, before[0].offset, 5);
    assert_eq!(
        got.iter().map(|r| (r.offset, r.value.clone().unwrap())).collect::<Vec<_>>(),
        java.iter().map(|r| (r.offset, r.value.clone())).collect::<Vec<_>>()
    );
    assert_eq!(got[0].value.as_deref(), Some(&classic_bytes("early0")[..]));

    // From a time: the marked record is the first at or after `since` on its partition.
    let at = reader.offsets_at(&topic, &[marked.partition], since).unwrap();
    assert_eq!(at, vec![(marked.partition, marked.offset)]);

    // By header: found where it was written; a value never written is not found, and the search ends.
    let found = reader.find_by_header(&topic, since, "Idempotency-Key", b"abc", deadline).unwrap().unwrap();
    assert_eq!((found.partition, found.offset), (marked.partition, marked.offset));
    assert_eq!(found.value.as_deref(), Some(&classic_bytes("marked")[..]));
    assert_eq!(reader.find_by_header(&topic, since, "Idempotency-Key", b"zzz", deadline).unwrap(), None);
    // Before `since` is not searched: the early records carry no header anyway, so search for the marked one's
    // value from after it was written.
    assert_eq!(reader.find_by_header(&topic, now_ms() + 1000, "Idempotency-Key", b"abc", deadline).unwrap(), None);
}

#[test]
fn a_topic_that_does_not_exist_is_not_found() {
    let dir = schema_dir(&[]);
    let text = file_config(&dir, "");
    let reader = Reader::new(&Config::from_json(&text).unwrap()).unwrap();
    let e = reader.partitions(&unique("never-written")).unwrap_err();
    assert_eq!(e.status, topicgate::Status::NotFound, "{}", e.message);
}
