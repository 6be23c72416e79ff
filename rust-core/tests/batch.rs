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

/// Two core configs that both take atomic batches (here: different schema directories, and one
/// with other producer settings) in one process: their transactional producers must not share
/// transactional ids, or each `init_transactions` fences the other's producer and batches fail.
#[test]
fn publishers_of_different_configs_commit_at_once_without_fencing_each_other() {
    let topics: Vec<String> = (0..3).map(|i| unique(&format!("batchtwo{i}"))).collect();
    let configs = [
        file_config(&schema_dir(&[(&topics[0], CLASSIC_PROTO)]), ""),
        file_config(&schema_dir(&[(&topics[1], CLASSIC_PROTO)]), ""),
        format!(
            r#"{{"kafka":{{"bootstrap_servers":"{}","properties":{{"linger.ms":2}}}},"registry":{{"kind":"file","directory":"{}"}}}}"#,
            env("KAFKA_BOOTSTRAP"),
            schema_dir(&[(&topics[2], CLASSIC_PROTO)]).display()
        ),
    ];
    let publishers: Vec<Publisher> = configs.iter().map(|c| Publisher::new(c).unwrap()).collect();
    const THREADS_PER_PUBLISHER: usize = 2;
    const BATCHES: usize = 10;
    const RECORDS: usize = 10;
    // Every thread commits its batches while the others do: (publisher, sent texts, deliveries).
    let committed = std::thread::scope(|s| {
        let mut running = Vec::new();
        for (n, (p, topic)) in publishers.iter().zip(&topics).enumerate() {
            for t in 0..THREADS_PER_PUBLISHER {
                running.push(s.spawn(move || {
                    (0..BATCHES)
                        .map(|b| {
                            let sent = texts(&format!("p{n}t{t}b{b}r"), RECORDS);
                            let ds = p
                                .commit_batch(&batch(p, topic, &sent))
                                .unwrap_or_else(|e| panic!("publisher {n}, thread {t}, batch {b}: {e}"));
                            (n, sent, ds)
                        })
                        .collect::<Vec<_>>()
                }));
            }
        }
        running.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    // Every batch whole, read back read_committed: each record where its delivery says, nothing more.
    for (n, topic) in topics.iter().enumerate() {
        let mine: Vec<_> = committed.iter().filter(|(m, _, _)| *m == n).collect();
        let partition = mine[0].2[0].partition;
        let total = THREADS_PER_PUBLISHER * BATCHES * RECORDS;
        let got = read_back(topic, partition, 0, total);
        assert_eq!(got.len(), total);
        for (_, sent, ds) in mine {
            for (text, d) in sent.iter().zip(ds) {
                assert_eq!(d.partition, partition, "one key, one partition");
                let r = got.iter().find(|r| r.offset == d.offset).expect("committed record is read back");
                assert_eq!(r.value, classic_bytes(text), "{topic} offset {}", d.offset);
            }
        }
    }
}
