//! Outcomes of records published without waiting: delivery reports land here, a caller drains them.
//!
//! Why: a gateway that waits for each acknowledgement inside a blocking call parks one OS thread
//! per request (in Go, one cgo call per request, which the runtime hands off and back). With a
//! completion queue the caller starts records from any thread and one poller collects outcomes.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::delivery::Delivery;
use crate::error::Result;

/// The outcome of one started record, tagged with the caller's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The token the caller passed when starting the record.
    pub token: u64,
    /// Where the record landed, or why it did not.
    pub outcome: Result<Delivery>,
    /// Bytes of the record's value as produced (0 when nothing was produced: dry run).
    pub value_len: usize,
    /// The formats its value and key were encoded with.
    pub formats: Formats,
}

/// Codes of the schema formats a record was encoded with, as the C ABI reports them.
pub(crate) const FORMAT_NONE: u8 = 0;
/// Avro.
pub(crate) const FORMAT_AVRO: u8 = 1;
/// JSON Schema.
pub(crate) const FORMAT_JSONSCHEMA: u8 = 2;
/// Protobuf.
pub(crate) const FORMAT_PROTOBUF: u8 = 3;

/// What a record was encoded as: the schema formats of its value and key (`FORMAT_*`;
/// `FORMAT_NONE`: not schema-encoded, e.g. a key given as bytes) and its key's bytes as produced.
///
/// Why: a caller answering in a format-naming protocol (Confluent v3's `value.type`) must say the
/// format the core chose from the topic's schema, which only the core knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Formats {
    /// The value's format code.
    pub value: u8,
    /// The key's format code (`FORMAT_NONE` without `key_schema`).
    pub key: u8,
    /// Bytes of the key as produced (0: no key).
    pub key_len: usize,
}

/// A queue of completions that one or more pollers drain; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct CompletionQueue {
    ready: Mutex<VecDeque<Completion>>,
    arrived: Condvar,
}

impl CompletionQueue {
    /// Adds one outcome and wakes a waiting poller.
    pub fn push(&self, token: u64, value_len: usize, outcome: Result<Delivery>) {
        self.push_encoded(token, value_len, Formats::default(), outcome);
    }

    /// [`CompletionQueue::push`], with the formats the record was encoded with.
    pub fn push_encoded(&self, token: u64, value_len: usize, formats: Formats, outcome: Result<Delivery>) {
        self.lock().push_back(Completion { token, outcome, value_len, formats });
        self.arrived.notify_one();
    }

    /// Moves up to `max` completions into `out`, waiting up to `timeout` for the first one;
    /// returns how many were moved (0 when the time passed with none ready, or `max` is 0).
    pub fn take(&self, out: &mut Vec<Completion>, max: usize, timeout: Duration) -> usize {
        if max == 0 {
            return 0;
        }
        let deadline = Instant::now() + timeout;
        let mut ready = self.lock();
        while ready.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return 0;
            }
            ready = self.arrived.wait_timeout(ready, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        let n = ready.len().min(max);
        out.extend(ready.drain(..n));
        if !ready.is_empty() {
            // Another poller may be waiting; what is left is its to take.
            self.arrived.notify_one();
        }
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Completion>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn take_returns_in_order_at_most_max_and_times_out_empty() {
        let q = CompletionQueue::default();
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 8, Duration::from_millis(20)), 0);
        for token in 1..=5 {
            q.push(token, 0, Ok(Delivery { partition: 0, offset: token as i64 }));
        }
        assert_eq!(q.take(&mut out, 3, Duration::ZERO), 3);
        assert_eq!(q.take(&mut out, 0, Duration::ZERO), 0);
        assert_eq!(q.take(&mut out, 8, Duration::ZERO), 2);
        assert_eq!(out.iter().map(|c| c.token).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_waiting_poller_wakes_for_a_push_from_another_thread() {
        let q = Arc::new(CompletionQueue::default());
        let pusher = {
            let q = q.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                q.push(7, 0, Err(crate::Error::timeout("late")));
            })
        };
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 4, Duration::from_secs(30)), 1);
        assert_eq!(
            out[0],
            Completion {
                token: 7,
                outcome: Err(crate::Error::timeout("late")),
                value_len: 0,
                formats: Formats::default()
            }
        );
        pusher.join().unwrap();
    }
}
