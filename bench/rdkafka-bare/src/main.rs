//! `make bench` contender rdkafka-bare: the producer's own limit on this machine. No HTTP, no
//! encoding per record: a bare rdkafka `ThreadedProducer` with topicgate's default producer settings
//! (acks=all, enable.idempotence=true, linger.ms=1) sends the bytes topicgate produced for the
//! payload, from N threads that each send one record and wait for its own delivery report — the
//! concurrency model of `tg_publish`. bench/run.py reads those bytes back from a record the core
//! wrote (its broker warm-up), so this program does not link the core.
//!
//! usage: rdkafka_bare <value_file> <topic> <threads> <seconds> <rate> <warmup_ms>
//! (KAFKA_BOOTSTRAP from the environment; BENCH_ACKS=1 for acks=1 without idempotence.)
//! rate 0 is a closed loop; rate R spreads R records/s over the threads on fixed schedules.
//! Prints one JSON line, the same fields as bench/core_ffi.c.

use std::sync::mpsc::{self, SyncSender};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

/// Answers each delivery report to the thread waiting for it, as topicgate's producer does.
struct Replies;

impl ClientContext for Replies {}

impl ProducerContext for Replies {
    type DeliveryOpaque = Box<SyncSender<bool>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let _ = reply.send(result.is_ok());
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
                        let t0 = Instant::now();
                        let (reply, answer) = mpsc::sync_channel(1);
                        let record = BaseRecord::<(), [u8], _>::with_opaque_to(topic.as_str(), Box::new(reply))
                            .payload(value.as_slice());
                        let delivered = match producer.send(record) {
                            Ok(()) => answer.recv_timeout(Duration::from_secs(15)).unwrap_or(false),
                            Err((e, _)) => {
                                eprintln!("rdkafka_bare: send: {e}");
                                false
                            }
                        };
                        if !delivered {
                            r.errors += 1;
                            continue;
                        }
                        r.ok += 1;
                        if t0 >= measure_from {
                            r.latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        }
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
