//! Publishes through the Rust API to the real broker, with schemas from a directory and from Glue
//! (moto), and reads every record back with Kafka's own Java consumer.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use topicgate::{Placement, Publisher, Record, Status};

fn headers(pairs: &[(&str, &str)]) -> Vec<topicgate::headers::Header> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
}

#[test]
fn classic_request_from_file_registry_is_read_back_byte_for_byte() {
    let topic = unique("classic");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let h = headers(&[("my_key", "myvalue"), ("my_other_key", "42")]);
    let d = p
        .publish(&Record {
            topic: &topic,
            json: r#"{"sample_message":"hello world"}"#,
            headers: &h,
            key: Some(b"messageKey"),
        })
        .unwrap();
    let got = read_back(&topic, d.partition, d.offset, 1);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!((r.partition, r.offset), (d.partition, d.offset));
    assert_eq!(r.value, classic_bytes("hello world"));
    assert_eq!(r.key.as_deref(), Some(&b"messageKey"[..]));
    assert_eq!(
        r.headers,
        vec![("my_key".to_owned(), b"myvalue".to_vec()), ("my_other_key".to_owned(), b"42".to_vec())]
    );
}

#[test]
fn no_key_and_no_headers_mean_none() {
    let topic = unique("nokey");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let d = p.publish(&Record { topic: &topic, json: r#"{"sample_message":"x"}"#, headers: &[], key: None }).unwrap();
    let r = &read_back(&topic, d.partition, d.offset, 1)[0];
    assert_eq!(r.key, None);
    assert!(r.headers.is_empty());
    assert_eq!(r.value, classic_bytes("x"));
}

#[test]
fn glue_registry_raw_and_glue_framed_values() {
    let registry = TEST_REGISTRY;
    let topic = unique("glue");
    let version_id = glue_create_schema(registry, &topic, CLASSIC_PROTO);

    let raw = Publisher::new(&glue_config(registry, "")).unwrap();
    let d =
        raw.publish(&Record { topic: &topic, json: r#"{"sample_message":"raw"}"#, headers: &[], key: None }).unwrap();
    assert_eq!(read_back(&topic, d.partition, d.offset, 1)[0].value, classic_bytes("raw"));

    // Glue SerDe framing worked out by hand: 0x03, 0x00, the 16 UUID bytes from the registry's answer,
    // message index of events.v1.MyTopic among [events.v1.Detail, events.v1.MyTopic] = 1, then the message.
    let framed = Publisher::new(&glue_config(registry, r#","value_format":"glue""#)).unwrap();
    let d = framed
        .publish(&Record { topic: &topic, json: r#"{"sample_message":"framed"}"#, headers: &[], key: None })
        .unwrap();
    let uuid_hex: String = version_id.chars().filter(|c| *c != '-').collect();
    let uuid_bytes: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&uuid_hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let expected = [vec![0x03, 0x00], uuid_bytes, vec![0x01], classic_bytes("framed")].concat();
    assert_eq!(read_back(&topic, d.partition, d.offset, 1)[0].value, expected);
}

#[test]
fn glue_pinned_version_and_latest_refresh() {
    let registry = TEST_REGISTRY;
    let topic = unique("versions");
    glue_create_schema(registry, &topic, CLASSIC_PROTO);
    let latest = Publisher::new(&glue_config(registry, r#","schema":{"refresh_interval_ms":200}"#)).unwrap();
    let pinned = Publisher::new(&glue_config(registry, r#","schema":{"version":1}"#)).unwrap();
    let with_extra = r#"{"sample_message":"v2","extra":"e"}"#;
    let rec = |json| Record { topic: &topic, json, headers: &[], key: None };
    let e = latest.publish(&rec(with_extra)).unwrap_err();
    assert_eq!(e.status, Status::BadRequest, "{e}");

    let v2 = CLASSIC_PROTO.replace("Detail detail = 3;", "Detail detail = 3;\n  string extra = 4;");
    let (_, number) = glue_add_version(registry, &topic, &v2);
    assert_eq!(number, 2);
    // The cached version 1 is served until a background refresh picks up version 2 (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(20);
    let d = loop {
        match latest.publish(&rec(with_extra)) {
            Ok(d) => break d,
            Err(e) if e.status == Status::BadRequest && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("version 2 never picked up: {e}"),
        }
    };
    let mut expected = classic_bytes("v2");
    expected.extend_from_slice(&[0x22, 1, b'e']); // field 4, length 1, "e"
    assert_eq!(read_back(&topic, d.partition, d.offset, 1)[0].value, expected);
    // The pinned publisher still uses version 1.
    assert_eq!(pinned.publish(&rec(with_extra)).unwrap_err().status, Status::BadRequest);
    pinned.publish(&rec(r#"{"sample_message":"v1"}"#)).unwrap();
}

#[test]
fn missing_schemas_are_404() {
    let registry = TEST_REGISTRY;
    glue_create_schema(registry, &unique("Other"), CLASSIC_PROTO);
    let glue = Publisher::new(&glue_config(registry, "")).unwrap();
    let e = glue.publish(&Record { topic: "NoSuchSchema", json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::NotFound, "{e}");
    assert!(e.message.contains("NoSuchSchema") && e.message.contains(registry), "{e}");

    let dir = schema_dir(&[]);
    let file = Publisher::new(&file_config(&dir, "")).unwrap();
    let e = file.publish(&Record { topic: "NoSuchFile", json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::NotFound, "{e}");
}

#[test]
fn schema_that_does_not_compile_is_500() {
    // moto stores any definition; a registry holding broken .proto text is a fault on our side of the API.
    let topic = unique("broken");
    glue_create_schema(TEST_REGISTRY, &topic, "syntax = \"proto3\"; message Broken {");
    let p = Publisher::new(&glue_config(TEST_REGISTRY, "")).unwrap();
    let e = p.publish(&Record { topic: &topic, json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::InternalError, "{e}");
    assert!(e.message.contains("does not compile") && e.message.contains("version 1"), "{e}");
}

#[test]
fn unreachable_registry_without_cache_is_503() {
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}"}},"registry":{{"kind":"glue","registry_name":"r","region":"us-east-1","endpoint_url":"http://127.0.0.1:{}","timeout_ms":2000}}}}"#,
        env("KAFKA_BOOTSTRAP"),
        closed_port()
    );
    let p = Publisher::new(&config).unwrap();
    let e = p.publish(&Record { topic: "T", json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("unreachable") || e.message.contains("timed out"), "{e}");
}

#[test]
fn cached_schema_is_served_while_the_registry_is_down() {
    let registry = TEST_REGISTRY;
    let topic = unique("outage");
    glue_create_schema(registry, &topic, CLASSIC_PROTO);
    let proxy = Proxy::start(&env("AWS_ENDPOINT_URL_GLUE"));
    let config = glue_config(registry, r#","schema":{"refresh_interval_ms":100}"#)
        .replace(&env("AWS_ENDPOINT_URL_GLUE"), &format!("http://{}", proxy.addr));
    let p = Publisher::new(&config).unwrap();
    p.publish(&Record { topic: &topic, json: r#"{"sample_message":"warm"}"#, headers: &[], key: None }).unwrap();
    proxy.stop();
    // Refreshes now fail; the last good schema keeps serving.
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        let json = format!(r#"{{"sample_message":"cached {i}"}}"#);
        p.publish(&Record { topic: &topic, json: &json, headers: &[], key: None }).unwrap();
    }
    // A topic never seen before cannot be served.
    let e = p.publish(&Record { topic: "NeverSeen", json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
}

#[test]
fn broker_down_is_503_within_the_deadline() {
    let dir = schema_dir(&[("T", CLASSIC_PROTO)]);
    let config = format!(
        r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:{}"}},"registry":{{"kind":"file","directory":"{}"}},"delivery_timeout_ms":1500}}"#,
        closed_port(),
        dir.display()
    );
    let p = Publisher::new(&config).unwrap();
    let started = Instant::now();
    let e =
        p.publish(&Record { topic: "T", json: r#"{"sample_message":"lost?"}"#, headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("unreachable"), "{e}");
    // Not a speed check: it proves the call returns instead of hanging (deadline 1.5 s, bound 30 s).
    assert!(started.elapsed() < Duration::from_secs(30));

    // Started without waiting: the same answer arrives as the record's one completion.
    p.start(
        &Record { topic: "T", json: r#"{"sample_message":"lost?"}"#, headers: &[], key: None },
        Placement::default(),
        42,
    )
    .unwrap();
    let mut done = Vec::new();
    while done.is_empty() && started.elapsed() < Duration::from_secs(60) {
        p.completions(&mut done, 8, Duration::from_millis(500));
    }
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].token, 42);
    let e = done[0].outcome.clone().unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert!(e.message.contains("unreachable"), "{e}");
    assert_eq!(p.completions(&mut done, 8, Duration::from_millis(200)), 0, "one completion per record");
}

#[test]
fn bad_input_is_rejected_and_nothing_is_written() {
    let topic = unique("bad");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, r#","limits":{"max_message_bytes":64,"max_key_bytes":4}"#)).unwrap();
    let long = format!("{{}}{}", " ".repeat(70));
    let rec = |json: &'static str, key: Option<&'static [u8]>| Record { topic: &topic, json, headers: &[], key };
    let too_long = Record { topic: &topic, json: &long, headers: &[], key: None };
    let cases: Vec<(Record, Status, &str)> = vec![
        (rec(r#"{"sample_message":1}"#, None), Status::BadRequest, "field `sample_message`"),
        (rec(r#"{"detail":{"nope":1}}"#, None), Status::BadRequest, "'nope'"),
        (rec(r#"{"sample_message":"x""#, None), Status::BadRequest, "body"),
        (rec(r#"{"count":"12x"}"#, None), Status::BadRequest, "field `count`"),
        (too_long, Status::PayloadTooLarge, "limit is 64"),
        (rec("{}", Some(b"12345")), Status::PayloadTooLarge, "key"),
    ];
    for (r, status, needle) in &cases {
        let e = p.publish(r).unwrap_err();
        assert_eq!(e.status, *status, "{e}");
        assert!(e.message.contains(needle), "{e} should mention {needle}");
    }
    let e = p.publish(&Record { topic: "bad/topic", json: "{}", headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::BadRequest);
    // One good record proves the topic exists; it must be the only one written.
    let d = p.publish(&rec(r#"{"sample_message":"only"}"#, None)).unwrap();
    assert_eq!(d.offset, 0);
    assert_eq!(records_on_topic(&topic), 1);
}

#[test]
fn record_larger_than_the_producer_allows_is_413() {
    let topic = unique("big");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "").replacen(
        r#""bootstrap_servers""#,
        r#""properties":{"message.max.bytes":1000},"bootstrap_servers""#,
        1,
    ))
    .unwrap();
    let json = format!(r#"{{"sample_message":"{}"}}"#, "x".repeat(2000));
    let e = p.publish(&Record { topic: &topic, json: &json, headers: &[], key: None }).unwrap_err();
    assert_eq!(e.status, Status::PayloadTooLarge, "{e}");
}

#[test]
fn many_threads_publish_at_once_and_every_record_is_accounted_for() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    let topic = unique("concurrent");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    let deliveries = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (p, topic) = (&p, &topic);
                s.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let key = format!("t{t}-{i}");
                            let json = format!(r#"{{"sample_message":"{key}"}}"#);
                            let d = p
                                .publish(&Record { topic, json: &json, headers: &[], key: Some(key.as_bytes()) })
                                .unwrap();
                            (key, d)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(deliveries.len(), THREADS * PER_THREAD);
    let mut by_position: HashMap<(i32, i64), Vec<&str>> = HashMap::new();
    for (key, d) in &deliveries {
        by_position.entry((d.partition, d.offset)).or_default().push(key);
    }
    let shared: Vec<_> = by_position.iter().filter(|(_, keys)| keys.len() > 1).collect();
    if !shared.is_empty() {
        // Say what the topic holds there too: the next reader of a CI log needs both sides.
        let on_topic: Vec<_> = shared
            .iter()
            .map(|((partition, offset), _)| {
                let got = read_back(&topic, *partition, (*offset).max(0), 1);
                (
                    partition,
                    offset,
                    got.first().map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()),
                )
            })
            .collect();
        panic!("records reported at the same (partition, offset): {shared:?}; keys on the topic there: {on_topic:?}");
    }
    assert_eq!(records_on_topic(&topic), (THREADS * PER_THREAD) as i64);
    // Read each partition back and match every record to its delivery report.
    for partition in deliveries.iter().map(|(_, d)| d.partition).collect::<HashSet<_>>() {
        let mine: Vec<_> = deliveries.iter().filter(|(_, d)| d.partition == partition).collect();
        let got = read_back(&topic, partition, 0, mine.len());
        for (key, d) in mine {
            let r = got.iter().find(|r| r.offset == d.offset).expect("reported offset is on the topic");
            assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
            assert_eq!(r.value, classic_bytes(key));
        }
    }
}

/// The metrics snapshot reads librdkafka's real statistics (a few numbers of each report).
#[test]
fn producer_metrics_come_from_librdkafkas_statistics() {
    let topic = unique("stats");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let p = Publisher::new(&file_config(&dir, "")).unwrap();
    p.publish(&Record { topic: &topic, json: r#"{"sample_message":"stats"}"#, headers: &[], key: None }).unwrap();
    let reported = || {
        let mut len = 0;
        let mut buf = vec![0u8; 1 << 20];
        let status = unsafe { topicgate::ffi::tg_metrics_json(buf.as_mut_ptr(), buf.len(), &mut len) };
        assert_eq!(status, topicgate::ffi::tg_status::Ok);
        let v: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        v["producers"].as_array().unwrap().iter().any(|p| {
            p["bootstrap"] == env("KAFKA_BOOTSTRAP")
                && p["stats_age_seconds"].is_number()
                && p["brokers_up"].as_i64() >= Some(1)
        })
    };
    // statistics.interval.ms is 1000: a report comes within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !reported() {
        assert!(Instant::now() < deadline, "no producer of {} reported statistics", env("KAFKA_BOOTSTRAP"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A partition the topic does not have is the client's fault: 400 naming it, whether the producer
/// refuses the record at once (it knows the topic) or in its delivery report (it learns the topic).
#[test]
fn a_partition_the_topic_does_not_have_is_400_naming_it() {
    let topic = unique("nopartition");
    let dir = schema_dir(&[(&topic, CLASSIC_PROTO)]);
    let record = Record { topic: &topic, json: r#"{"sample_message":"p99"}"#, headers: &[], key: None };
    let p99 = Placement { partition: Some(99), timestamp_ms: None };
    // A producer of its own (client.id), so that it has not seen the topic yet.
    let config = |client: &str| {
        format!(
            r#"{{"kafka":{{"bootstrap_servers":"{}","properties":{{"client.id":"{client}"}}}},"registry":{{"kind":"file","directory":"{}"}}}}"#,
            env("KAFKA_BOOTSTRAP"),
            dir.display()
        )
    };
    let p = Publisher::new(&config(&unique("p99-known"))).unwrap();
    p.publish(&record).unwrap();
    let known = p.start(&record, p99, 1).unwrap_err();
    let learning = Publisher::new(&config(&unique("p99-learning"))).unwrap();
    let learnt = match learning.start(&record, p99, 2) {
        Err(e) => e,
        Ok(()) => {
            let mut done = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while done.is_empty() && Instant::now() < deadline {
                learning.completions(&mut done, 8, Duration::from_millis(500));
            }
            done.first().expect("a completion").outcome.clone().unwrap_err()
        }
    };
    for e in [known, learnt] {
        assert_eq!(e.status, Status::BadRequest, "{e}");
        assert!(e.message.contains("partition 99"), "{e}");
    }
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A TCP forwarder in front of moto, so a test can take "the registry" away.
struct Proxy {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(upstream_url: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let upstream = upstream_url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                            continue;
                        };
                        let flag = flag.clone();
                        std::thread::spawn(move || pipe(client, server, flag));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // Dropping the listener closes the port: new connections are refused.
        });
        Proxy { addr, stop }
    }

    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Copies both directions until either side closes or the proxy stops.
fn pipe(a: std::net::TcpStream, b: std::net::TcpStream, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let copy = |mut from: std::net::TcpStream,
                mut to: std::net::TcpStream,
                stop: std::sync::Arc<std::sync::atomic::AtomicBool>| {
        from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 16 * 1024];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    };
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let s2 = stop.clone();
    let t = std::thread::spawn(move || copy(a2, b2, s2));
    copy(b, a, stop);
    let _ = t.join();
}
