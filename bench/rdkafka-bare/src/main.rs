//! `make bench` contender rdkafka-bare: the producer's own limit on this machine. No HTTP, no
//! encoding per record: a bare rdkafka `ThreadedProducer` with topicgate's default producer settings
//! (acks=all, enable.idempotence=true, linger.ms=1) sends the bytes topicgate produced for the
//! payload, from N threads that each send one record and wait for its own delivery report — the
//! concurrency model of `tg_publish`. bench/run.py reads those bytes back from a record the core
//! wrote (its broker warm-up), so this program does not link the core.
//!
//! With BENCH_ASYNC=1 each thread instead sends records as fast as the producer's queue takes them
//! and collects their delivery reports without waiting for each (the limit a batch can approach);
//! a latency is then from send to delivery report.
//!
//! usage: rdkafka_bare <value_file> <topic> <threads> <seconds> <rate> <warmup_ms>
//! (KAFKA_BOOTSTRAP from the environment; BENCH_ACKS=1 for acks=1 without idempotence.)
//! rate 0 is a closed loop; rate R spreads R records/s over the threads on fixed schedules.
//! Prints one JSON line, the same fields as bench/core_ffi.c.

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

/// Answers each delivery report to the thread that sent the record, as topicgate's producer does.
struct Replies;

/// A thread's channel of delivery reports: (delivered, when sent).
type Reports = (Sender<(bool, Instant)>, mpsc::Receiver<(bool, Instant)>);

/// Where a record's delivery report goes, and when the record was sent.
struct Reply {
    to: Sender<(bool, Instant)>,
    sent: Instant,
}

impl ClientContext for Replies {}

impl ProducerContext for Replies {
    type DeliveryOpaque = Box<Reply>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let _ = reply.to.send((result.is_ok(), reply.sent));
    }
}

/// One thread's counts and measured latencies (ms).
#[derive(Default)]
struct WorkerResult {
    ok: u64,
    errors: u64,
    latencies: Vec<f64>,
}

/// user+sys CPU seconds of this process (/proc/self/stat fields 14 and 15, in USER_HZ = 100 ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process in MiB (VmHWM).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Sends one record and waits for its delivery report (the concurrency model of `tg_publish`).
fn send_and_wait(
    producer: &ThreadedProducer<Replies>,
    topic: &str,
    value: &[u8],
    measure_from: Instant,
    r: &mut WorkerResult,
) {
    let (to, answer) = mpsc::channel();
    let record =
        BaseRecord::<(), [u8], _>::with_opaque_to(topic, Box::new(Reply { to, sent: Instant::now() })).payload(value);
    match producer.send(record) {
        Ok(()) => match answer.recv_timeout(Duration::from_secs(15)) {
            Ok((ok, sent)) => count(r, ok, sent, measure_from),
            Err(_) => r.errors += 1,
        },
        Err((e, _)) => {
            eprintln!("rdkafka_bare: send: {e}");
            r.errors += 1;
        }
    }
}

/// Sends one record without waiting; its report arrives on `reports`. A full queue is waited out;
/// false when the record could not be sent.
fn send_async(
    producer: &ThreadedProducer<Replies>,
    topic: &str,
    value: &[u8],
    reports: &Reports,
    in_flight: &mut u64,
) -> bool {
    let reply = Box::new(Reply { to: reports.0.clone(), sent: Instant::now() });
    let mut record = BaseRecord::<(), [u8], _>::with_opaque_to(topic, reply).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => {
                *in_flight += 1;
                return true;
            }
            Err((e, back)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                record = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => {
                eprintln!("rdkafka_bare: send: {e}");
                return false;
            }
        }
    }
}

/// Counts one delivery report; a latency is kept for records sent after the warm-up.
fn count(r: &mut WorkerResult, ok: bool, sent: Instant, measure_from: Instant) {
    if !ok {
        r.errors += 1;
        return;
    }
    r.ok += 1;
    if sent >= measure_from {
        r.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: rdkafka_bare <value_file> <topic> <threads> <seconds> <rate> <warmup_ms>");
        std::process::exit(2);
    }
    let value = std::fs::read(&args[1]).expect("value file");
    let topic = args[2].clone();
    let threads: u32 = args[3].parse().expect("threads");
    let seconds: f64 = args[4].parse().expect("seconds");
    let rate: f64 = args[5].parse().expect("rate");
    let warmup = Duration::from_millis(args[6].parse().expect("warmup_ms"));
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP (make kafka-up)");
    let acks1 = std::env::var("BENCH_ACKS").is_ok_and(|v| v == "1");
    let async_mode = std::env::var("BENCH_ASYNC").is_ok_and(|v| v == "1");

    let producer: ThreadedProducer<Replies> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", if acks1 { "1" } else { "all" })
        .set("enable.idempotence", if acks1 { "false" } else { "true" })
        .set("linger.ms", "1")
        .set("message.timeout.ms", "10000")
        .create_with_context(Replies)
        .expect("producer");

    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs_f64(seconds);
    let mut cpu0 = None;
    let results: Vec<WorkerResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (producer, topic, value) = (&producer, &topic, &value);
                s.spawn(move || {
                    let period =
                        if rate > 0.0 { Duration::from_secs_f64(threads as f64 / rate) } else { Duration::ZERO };
                    let mut next = start + period.mul_f64(i as f64 / threads as f64);
                    let mut r = WorkerResult::default();
                    let reports: Reports = mpsc::channel();
                    let mut in_flight = 0u64;
                    loop {
                        if rate > 0.0 {
                            if next >= end {
                                break;
                            }
                            std::thread::sleep(next.saturating_duration_since(Instant::now()));
                            next += period;
                        } else if Instant::now() >= end {
                            break;
                        }
                        if async_mode {
                            if !send_async(producer, topic, value, &reports, &mut in_flight) {
                                r.errors += 1;
                            }
                        } else {
                            send_and_wait(producer, topic, value, measure_from, &mut r);
                        }
                        while let Ok((ok, sent)) = reports.1.try_recv() {
                            in_flight -= 1;
                            count(&mut r, ok, sent, measure_from);
                        }
                    }
                    // Async: the reports of the records still in flight.
                    while in_flight > 0 {
                        match reports.1.recv_timeout(Duration::from_secs(15)) {
                            Ok((ok, sent)) => count(&mut r, ok, sent, measure_from),
                            Err(_) => r.errors += in_flight,
                        }
                        in_flight = in_flight.saturating_sub(1);
                    }
                    r
                })
            })
            .collect();
        std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
        cpu0 = Some(cpu_seconds());
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let elapsed = measure_from.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0.unwrap_or(0.0);
    let _ = producer.flush(Duration::from_secs(10));

    let ok: u64 = results.iter().map(|r| r.ok).sum();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut all: Vec<f64> = results.into_iter().flat_map(|r| r.latencies).collect();
    all.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "ok": ok, "errors": errors, "measured": all.len(), "elapsed_s": elapsed,
            "rps": all.len() as f64 / elapsed,
            "p50_ms": percentile(&all, 0.50), "p99_ms": percentile(&all, 0.99), "max_ms": all.last().copied().unwrap_or(0.0),
            "cpu_s": cpu, "rss_mb": peak_rss_mb(), "value_bytes": value.len(),
        })
    );
    std::process::exit(if errors > 0 { 1 } else { 0 });
}
