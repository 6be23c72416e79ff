//! Cold schema lookups under load: one registry fetch per schema however many requests wait for
//! it, a registry that is down costs bounded time and a bounded number of threads, and schema
//! compilation does not hold up the core's registry runtime.
//!
//! The tests here read process-wide figures (the registry fetch counter, the thread count, the
//! time a lookup takes), so they take turns (`serial`).

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use topicgate::{Publisher, Record, Status};

/// The registry's `timeout_ms` in the outage tests.
const TIMEOUT_MS: u64 = 1000;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The core's count of registry fetches (first fetches and refreshes) since the process started.
fn registry_fetches() -> u64 {
    let v: serde_json::Value = serde_json::from_str(&topicgate::metrics::snapshot_json()).unwrap();
    v["schema"]["fetches"].as_u64().expect("schema.fetches in the metrics snapshot")
}

/// This process's thread count, from /proc/self/status.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).expect("Threads: in /proc/self/status");
    line["Threads:".len()..].trim().parse().unwrap()
}

/// Samples the thread count every 2 ms until dropped; `max` is the highest seen.
struct ThreadWatch {
    max: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl ThreadWatch {
    fn start() -> ThreadWatch {
        let (max, stop) = (Arc::new(AtomicUsize::new(threads())), Arc::new(AtomicBool::new(false)));
        let (m, s) = (max.clone(), stop.clone());
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                m.fetch_max(threads(), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(2));
            }
        });
        ThreadWatch { max, stop, handle: Some(handle) }
    }

    /// Stops sampling; the most threads seen.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        self.max.load(Ordering::Relaxed)
    }
}

/// A Glue config whose endpoint is `endpoint`, with `timeout_ms` TIMEOUT_MS.
fn glue_at(endpoint: &str) -> String {
    format!(
        r#"{{"kafka":{{"bootstrap_servers":"{}"}},"registry":{{"kind":"glue","registry_name":"r","region":"us-east-1","endpoint_url":"{endpoint}","timeout_ms":{TIMEOUT_MS}}}}}"#,
        env("KAFKA_BOOTSTRAP")
    )
}

/// A loopback port with nothing listening: every connection is refused.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A registry that accepts connections and never answers (a hung or black-holed endpoint). The
/// connections stay open for the life of the process.
fn black_hole() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in l.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

/// A body the classic schema accepts (never reached: the schema lookup fails first).
const BODY: &str = r#"{"sample_message":"x"}"#;

/// Answers of a registry outage: every one a 503 that says the registry is the cause, each
/// within the lookup's bound.
fn check_outage_answers(answers: &[(String, Result<(), topicgate::Error>, Duration)]) {
    let bound = Duration::from_millis(TIMEOUT_MS) + Duration::from_millis(1500);
    for (topic, answer, took) in answers {
        let e = answer.clone().expect_err("no schema can be found with the registry down");
        assert_eq!(e.status, Status::Unavailable, "{topic}: {e}");
        assert!(e.message.contains("registry"), "{topic}: the message does not name the registry: {e}");
        assert!(*took <= bound, "{topic}: answered after {took:?}, the bound is {bound:?}: {e}");
    }
}

#[test]
fn registry_down_answers_503_in_bounded_time_with_bounded_threads() {
    let _serial = serial();
    const REQUESTS: usize = 2000;

    // 1. Refused connections: 2,000 distinct uncached topics from 64 threads.
    const WORKERS: usize = 64;
    let p = Publisher::new(&glue_at(&format!("http://127.0.0.1:{}", closed_port()))).unwrap();
    let topics: Vec<String> = (0..REQUESTS).map(|i| format!("Refused{i}")).collect();
    let next = AtomicUsize::new(0);
    let baseline = threads();
    let watch = ThreadWatch::start();
    let started = Instant::now();
    let answers: Vec<_> = thread::scope(|s| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(topic) = topics.get(i) else { break };
                        let t = Instant::now();
                        let answer = p.publish(&Record { topic, json: BODY, headers: &[], key: None }).map(|_| ());
                        mine.push((topic.clone(), answer, t.elapsed()));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let total = started.elapsed();
    let most = watch.finish();
    eprintln!("refused: {REQUESTS} answers in {total:?}, at most {most} threads ({baseline} before)");
    assert_eq!(answers.len(), REQUESTS);
    check_outage_answers(&answers);
    assert!(total < Duration::from_secs(60), "2,000 answers took {total:?}");
    assert!(most <= baseline + WORKERS + 16, "{most} threads at most, {baseline} before the run and {WORKERS} workers");
    // A failed lookup is remembered briefly: asked again at once, the registry is not.
    let again = Record { topic: "RefusedTwice", json: BODY, headers: &[], key: None };
    assert_eq!(p.publish(&again).unwrap_err().status, Status::Unavailable);
    let fetches = registry_fetches();
    let e = p.publish(&again).unwrap_err();
    assert_eq!(e.status, Status::Unavailable, "{e}");
    assert_eq!(registry_fetches(), fetches, "a failure just seen was fetched again: {e}");

    // 2. A registry that never answers, requests arriving at 400 per second, each on a thread of
    // its own: what a Go host does when every thread is blocked in a cgo call.
    let p = Arc::new(Publisher::new(&glue_at(&format!("http://{}", black_hole()))).unwrap());
    let baseline = threads();
    let watch = ThreadWatch::start();
    let started = Instant::now();
    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let p = p.clone();
        requests.push(thread::spawn(move || {
            let topic = format!("Hung{i}");
            let t = Instant::now();
            let answer = p.publish(&Record { topic: &topic, json: BODY, headers: &[], key: None }).map(|_| ());
            (topic, answer, t.elapsed())
        }));
        // One every 2.5 ms, against the start, so that slow spawns do not lower the rate.
        let due = started + Duration::from_micros(2500 * (i as u64 + 1));
        thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let answers: Vec<_> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    let total = started.elapsed();
    let most = watch.finish();
    let at_limit = answers.iter().filter(|(_, a, _)| a.as_ref().is_err_and(|e| e.message.contains("limit"))).count();
    eprintln!(
        "hung: {REQUESTS} answers in {total:?} ({at_limit} at the limit), at most {most} threads ({baseline} before)"
    );
    // The core lets 128 requests wait for the registry; a thread that gave its place up may not
    // have exited yet when the next one takes it, hence twice that, plus the runtime's threads.
    assert!(most <= baseline + 2 * 128 + 32, "{most} threads at most, {baseline} before the run");
    check_outage_answers(&answers);
    assert!(at_limit > 0, "no request was refused at the limit of concurrent registry lookups");
    assert!(total < Duration::from_secs(30), "2,000 answers took {total:?}");
}

#[test]
fn concurrent_first_publishes_make_one_registry_fetch() {
    let _serial = serial();
    const REQUESTS: usize = 50;
    let topic = unique("single-flight");
    glue_create_schema(TEST_REGISTRY, &topic, CLASSIC_PROTO);
    let p = Publisher::new(&glue_config(TEST_REGISTRY, "")).unwrap();
    let before = registry_fetches();
    let barrier = Barrier::new(REQUESTS);
    let deliveries: Vec<_> = thread::scope(|s| {
        let requests: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let (p, topic, barrier) = (&p, &topic, &barrier);
                s.spawn(move || {
                    let json = format!(r#"{{"sample_message":"first {i}"}}"#);
                    barrier.wait();
                    p.publish(&Record { topic, json: &json, headers: &[], key: None })
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for d in &deliveries {
        assert!(d.is_ok(), "{d:?}");
    }
    assert_eq!(registry_fetches() - before, 1, "registry fetches for {REQUESTS} concurrent first publishes");
    assert_eq!(records_on_topic(&topic), REQUESTS as i64);
}

/// A `.proto` whose first message reaches `n` messages: slow to compile (about 2 s for 4,000 in a
/// debug build). `tag` goes into a comment, so that two tags are two different texts.
fn big_proto(n: usize, tag: &str) -> String {
    let mut src = format!("// {tag}\nsyntax = \"proto3\";\npackage big;\n");
    for i in 0..n {
        let next = (i + 1) % n;
        src.push_str(&format!(
            "message M{i} {{ string a = 1; int64 b = 2; M{next} next = 3; repeated string c = 4; map<string, int32> d = 5; }}\n"
        ));
    }
    src
}

#[test]
fn a_schema_compiling_in_the_background_does_not_hold_up_other_lookups() {
    let _serial = serial();
    let dir = schema_dir(&[("Big", &big_proto(4000, "v1")), ("Small", CLASSIC_PROTO)]);
    let config = file_config(&dir, r#","schema":{"refresh_interval_ms":100},"dry_run":true"#);
    let p = Publisher::new(&config).unwrap();
    let publish = |topic: &str| p.publish(&Record { topic, json: "{}", headers: &[], key: None });
    let t = Instant::now();
    publish("Big").unwrap();
    let compile = t.elapsed();
    // A new text: the next refresh compiles it again, in the background.
    std::fs::write(dir.join("Big.proto"), big_proto(4000, "v2")).unwrap();
    thread::sleep(Duration::from_millis(150));
    publish("Big").unwrap(); // stale: served, and the refresh starts
    thread::sleep(Duration::from_millis(200)); // the refresh has read the file and compiles it
    let t = Instant::now();
    publish("Small").unwrap();
    let small = t.elapsed();
    eprintln!("Big compiled in {compile:?}; Small looked up during its refresh in {small:?}");
    assert!(small < compile / 3, "Small took {small:?} while Big's refresh compiled (Big compiles in {compile:?})");
}
