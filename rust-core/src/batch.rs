//! Many records per call: every record of a batch is checked and encoded before any is produced;
//! then the batch is queued at once (each record completes on its own, like `Publisher::start`)
//! or written as one Kafka transaction (crate::transaction).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::completion::Formats;
use crate::delivery::Delivery;
use crate::encoded::Encoded;
use crate::error::{Error, Result};
use crate::producer::{Placement, Reply};
use crate::publisher::{check_topic, Publisher, Record, Schemas};
use crate::value_schema::ValueSchema;

/// Records for one topic, checked and encoded, waiting to be produced together.
#[derive(Debug)]
pub struct Batch {
    topic: String,
    records: Vec<Encoded>,
    /// The topic's schemas (value, and key with `key_schema`), looked up for the first record and
    /// used for the rest, and the publisher (by address) whose lookup it was: another publisher
    /// looks up its own.
    schemas: Schemas,
    schema_of: usize,
}

impl Batch {
    /// An empty batch for `topic` (checked against Kafka's topic name rule).
    pub fn new(topic: &str) -> Result<Batch> {
        check_topic(topic)?;
        Ok(Batch { topic: topic.to_owned(), records: Vec::new(), schemas: Schemas::default(), schema_of: 0 })
    }

    /// The batch's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Checks and encodes one record with `publisher`'s schema and limits, and keeps it; an error
    /// (as `Publisher::publish` would give) keeps nothing. A negative partition is 400.
    pub fn add(
        &mut self,
        publisher: &Publisher,
        json: &str,
        headers: &[crate::headers::Header],
        key: Option<&[u8]>,
        placement: Placement,
    ) -> Result<()> {
        self.add_selected(publisher, json, None, headers, key, placement)
    }

    /// [`Batch::add`], the value's schema chosen by `value_schema` when given (see
    /// [`ValueSchema`]; a selected schema is looked up per record, not shared by the batch).
    pub fn add_selected(
        &mut self,
        publisher: &Publisher,
        json: &str,
        value_schema: Option<&ValueSchema>,
        headers: &[crate::headers::Header],
        key: Option<&[u8]>,
        placement: Placement,
    ) -> Result<()> {
        placement.check()?;
        let of = publisher as *const Publisher as usize;
        if self.schema_of != of {
            (self.schemas, self.schema_of) = (Schemas::default(), of);
        }
        let record = Record { topic: &self.topic, json, headers, key };
        let (value, key, formats) = publisher.encode_described(&mut self.schemas, &record, value_schema)?;
        self.records.push(Encoded {
            value,
            key: key.map(Cow::into_owned),
            headers: headers.to_vec(),
            placement,
            formats,
        });
        Ok(())
    }

    /// The formats record `index` was encoded with and its value's bytes (`None`: no such record).
    pub fn encoded(&self, index: usize) -> Option<(Formats, usize)> {
        self.records.get(index).map(|r| (r.formats, r.value.len()))
    }
}

impl Publisher {
    /// Queues every record of `batch` in order without waiting; record i completes through
    /// [`Publisher::completions`] with token `first_token + i`. Returns how many were queued and,
    /// if not all, why the next one was not: the queued ones complete as usual, the rest are
    /// not written (and get no completion).
    pub fn start_batch(&self, batch: &Batch, first_token: u64) -> (usize, Result<()>) {
        for (i, r) in batch.records.iter().enumerate() {
            let token = first_token + i as u64;
            let queued = match self.producer() {
                Some(producer) => {
                    let reply = Reply::Queue {
                        queue: self.completion_queue(),
                        token,
                        value_len: r.value.len(),
                        formats: r.formats,
                    };
                    producer.enqueue(&batch.topic, &r.value, r.key.as_deref(), &r.headers, r.placement, reply)
                }
                None => {
                    self.completion_queue().push_encoded(token, 0, r.formats, Ok(Delivery::DRY_RUN));
                    Ok(())
                }
            };
            if let Err(e) = queued {
                return (i, Err(e));
            }
        }
        (batch.records.len(), Ok(()))
    }

    /// Writes `batch` as one Kafka transaction and returns each record's delivery, in order, once
    /// committed; on an error nothing of the batch is visible to a `read_committed` consumer
    /// (a 504 says the commit's outcome is unknown). Answers within `transactions.timeout_ms`
    /// (see [`Publisher::commit_batch_within`]).
    pub fn commit_batch(&self, batch: &Batch) -> Result<Vec<Delivery>> {
        self.commit_batch_within(batch, Duration::from_millis(self.config().transactions.timeout_ms))
    }

    /// [`Publisher::commit_batch`], answering within `timeout` (the request's deadline): waiting
    /// for a free transactional producer ends then (503, nothing written), and so does resuming a
    /// commit that timed out (504, outcome unknown; it is resumed in the background). Each attempt
    /// to start, commit or abort takes at most `transactions.timeout_ms`.
    pub fn commit_batch_within(&self, batch: &Batch, timeout: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + timeout;
        if batch.is_empty() {
            return Err(Error::bad_request("batch: no records"));
        }
        match self.transactions() {
            Some(transactions) => transactions.write(&batch.topic, &batch.records, deadline),
            None => Ok(vec![Delivery::DRY_RUN; batch.len()]),
        }
    }
}
