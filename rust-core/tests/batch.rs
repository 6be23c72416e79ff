//! Batches through the Rust API on the real broker: queued batches complete record by record, an
//! all-or-nothing batch is one transaction (read back by Kafka's own consumer, read_committed),
//! and a record the producer cannot send aborts its transaction.

mod common;

use std::time::Duration;

use common::*;
use topicgate::producer::Placement;
use topicgate::{Batch, Publisher, Status};

fn batch(p: &Publisher, topic: &str, texts: &[String]) -> Batch {
    let mut b = Batch::new(topic).unwrap();
    for t in texts {
        b.add(p, &format!(r#"{{"sample_message":"{t}"}}"#), &[], Some(b"k"), Placement::default()).unwrap();
    }
    b
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn an_invalid_record_is_refused_by_add_and_kept_out() {
    let topic = unique("batchinvalid");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let mut b = Batch::new(&topic).unwrap();
    b.add(&p, r#"{"sample_message":"ok"}"#, &[], None, Placement::default()).unwrap();
    let e = b.add(&p, r#"{"sample_message":1}"#, &[], None, Placement::default()).unwrap_err();
    assert_eq!(e.status, Status::BadRequest);
    assert!(e.message.contains("sample_message"), "{}", e.message);
    assert_eq!(b.len(), 1);
    assert_eq!(Batch::new("a/b").unwrap_err().status, Status::BadRequest);
}

#[test]
fn a_started_batch_completes_each_record_under_its_token_in_order() {
    let topic = unique("batchstart");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let sent = texts("s", 50);
    let (queued, result) = p.start_batch(&batch(&p, &topic, &sent), 1000);
    assert_eq!((queued, result), (50, Ok(())));
    let mut done = Vec::new();
    for _ in 0..100 {
        if done.len() == 50 {
            break;
        }
        p.completions(&mut done, 64, Duration::from_secs(1));
    }
    done.sort_by_key(|c| c.token);
    assert_eq!(done.iter().map(|c| c.token).collect::<Vec<_>>(), (1000..1050).collect::<Vec<_>>());
    let first = done[0].outcome.clone().unwrap();
    let got = read_back(&topic, first.partition, first.offset, 50);
    for (i, (c, r)) in done.iter().zip(&got).enumerate() {
        let d = c.outcome.clone().unwrap();
        assert_eq!((d.partition, d.offset), (r.partition, r.offset), "record {i}");
        assert_eq!(r.value, classic_bytes(&sent[i]));
    }
}

#[test]
fn a_committed_batch_is_read_back_whole() {
    let topic = unique("batchtxn");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let sent = texts("c", 30);
    let ds = p.commit_batch(&batch(&p, &topic, &sent)).unwrap();
    assert_eq!(ds.len(), 30);
    let got = read_back(&topic, ds[0].partition, ds[0].offset, 30);
    for (i, (d, r)) in ds.iter().zip(&got).enumerate() {
        assert_eq!((d.partition, d.offset), (r.partition, r.offset), "record {i}");
        assert_eq!(r.value, classic_bytes(&sent[i]));
    }
}

#[test]
fn a_record_the_producer_cannot_send_aborts_the_whole_transaction() {
    let topic = unique("batchabort");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}","properties":{{"message.max.bytes":2000}}}},"registry":{{"kind":"file","directory":"{}"}}}}"#,
        env("KAFKA_BOOTSTRAP"),
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let mut sent = texts("a", 20);
    sent[9] = "z".repeat(2100);
    let e = p.commit_batch(&batch(&p, &topic, &sent)).unwrap_err();
    assert_eq!(e.status, Status::PayloadTooLarge, "{}", e.message);
    assert!(e.message.contains("record 10") && e.message.contains("aborted"), "{}", e.message);
    // The producer is usable again, and a read_committed consumer skips the aborted records.
    let after = p.commit_batch(&batch(&p, &topic, &["after".to_owned()])).unwrap()[0];
    let first = &read_back(&topic, after.partition, 0, 1)[0];
    assert_eq!((first.offset, first.value.clone()), (after.offset, classic_bytes("after")));
}
