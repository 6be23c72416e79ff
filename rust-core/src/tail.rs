//! A topic's tail read round after round by one consumer that stays assigned between rounds: the
//! reader of the gateway's follower, which shares each round among many event streams (issue
//! #22). A page assigns, fetches to the end and unassigns every time, so Kafka served about three
//! fetches per partition per round that way; a tail is fetched as records arrive, as any consumer
//! is. Rounds answer a page's JSON, so the follower handles both alike.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::publisher::Publisher;
use crate::read_page::{entries, page, partitions_of, positions, PageRequest, MAX_PAGE_RECORDS, MAX_WAIT_MS};
use crate::reader::Reader;

/// How often a tail of every partition looks for partitions added to its topic.
const RELIST: Duration = Duration::from_secs(10);
/// How long one poll of an empty round blocks, so a round ends close to its wait.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// What librdkafka fetches ahead for a tail, in KiB (its default is 64 MiB): a tail lives as
/// long as its stream, and a client that reads slowly must not make it hold a topic's backlog.
const QUEUE_KBYTES: &str = "4096";
/// How soon librdkafka fetches again once that queue has room (its default, 1 s, stalled a
/// catching-up stream for ~850 ms whenever its 4 MiB filled).
const QUEUE_BACKOFF_MS: &str = "10";

/// A topic's partitions followed from chosen positions by a consumer of their own.
pub struct Tail {
    reader: Reader,
    topic: String,
    raw_on_error: bool,
    /// Follows every partition of the topic, added ones included (no `partitions` asked).
    every: bool,
    /// Each partition's next offset: after the last record a round answered.
    next: BTreeMap<i32, i64>,
    listed: Instant,
}

impl Tail {
    /// Opens the tail of `req.topic` at `req`'s positions (as a page's: `offsets`, else `start`);
    /// its `limit` and `wait_ms` are ignored (each round gives its own).
    pub fn open(publisher: &Publisher, req: &PageRequest) -> Result<Tail> {
        crate::publisher::check_topic(&req.topic)?;
        // The schema first: a topic without one cannot be read, whatever Kafka holds.
        publisher.value_schema(&req.topic)?;
        let reader = Reader::with(
            publisher.config(),
            &[("queued.max.messages.kbytes", QUEUE_KBYTES), ("fetch.queue.backoff.ms", QUEUE_BACKOFF_MS)],
        )?;
        let partitions = partitions_of(&reader, req)?;
        let next = positions(&reader, &req.topic, &partitions, &req.offsets, &req.start)?;
        reader.assign_more(&req.topic, &next.iter().map(|(&p, &o)| (p, o)).collect::<Vec<_>>())?;
        Ok(Tail {
            reader,
            topic: req.topic.clone(),
            raw_on_error: req.raw_on_error,
            every: req.partitions.is_none(),
            next,
            listed: Instant::now(),
        })
    }

    /// One round: the records that arrive within `wait` (it ends once it holds some and no more
    /// are at hand, or `limit` of them), as a page's JSON with the positions after them.
    pub fn round(&mut self, publisher: &Publisher, wait: Duration, limit: usize) -> Result<Value> {
        if limit == 0 || limit > MAX_PAGE_RECORDS {
            return Err(Error::bad_request(format!("limit: must be 1 to {MAX_PAGE_RECORDS}, got {limit}")));
        }
        if wait > Duration::from_millis(MAX_WAIT_MS) {
            return Err(Error::bad_request(format!("wait: at most {MAX_WAIT_MS} ms, got {}", wait.as_millis())));
        }
        if self.every && self.listed.elapsed() >= RELIST {
            self.follow_added()?;
        }
        let deadline = Instant::now() + wait;
        let mut records = Vec::new();
        while records.len() < limit {
            let left = deadline.saturating_duration_since(Instant::now());
            // Once a round holds records it takes only what is at hand.
            let timeout = if records.is_empty() { left.min(POLL_SLICE) } else { Duration::ZERO };
            match self.reader.poll_next(timeout)? {
                Some(r) => {
                    self.next.insert(r.partition, r.offset + 1);
                    records.push(r);
                }
                None if !records.is_empty() || left.is_zero() => break,
                None => {}
            }
        }
        let entries = entries(publisher, &self.topic, self.raw_on_error, &records)?;
        Ok(page(&self.reader, &self.topic, &self.next, entries))
    }

    /// Assigns partitions added to the topic since it was last listed, from their start: every
    /// record written to them since they appeared.
    fn follow_added(&mut self) -> Result<()> {
        self.listed = Instant::now();
        let added: Vec<(i32, i64)> = self
            .reader
            .partitions(&self.topic)?
            .into_iter()
            .filter(|p| !self.next.contains_key(p))
            .map(|p| (p, 0))
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        self.reader.assign_more(&self.topic, &added)?;
        self.next.extend(added);
        Ok(())
    }
}
