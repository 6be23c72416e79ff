//! Finds whether a record whose publish ended with no known outcome (a `504`) was written after
//! all (issue #21, `Idempotency-Key`): the gateway retries such a key only after searching the
//! topic for the record header that carries the key. One [`Reader`] per publisher, made on first
//! use and used by one search at a time (a reader is assigned the partitions it reads).

use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::reader::Reader;

/// Searches a topic for a record by a header value; see the module doc.
#[derive(Default)]
pub struct Finder {
    reader: Mutex<Option<Reader>>,
}

impl Finder {
    /// Where the first record of `topic` with a timestamp at or after `since_ms` and the header
    /// `name: value` was written, searched in every partition up to its end (`read_committed`),
    /// until `deadline`: `None` when there is none. A dry-run `config` writes nothing: `None`.
    pub fn find(
        &self,
        config: &Config,
        topic: &str,
        since_ms: i64,
        name: &str,
        value: &[u8],
        deadline: Instant,
    ) -> Result<Option<Delivery>> {
        if config.dry_run {
            return Ok(None);
        }
        if name.is_empty() {
            return Err(Error::bad_request("name: the header name is empty"));
        }
        let mut guard = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(Reader::new(config)?);
        }
        let reader = guard.as_ref().expect("made above");
        let found = reader.find_by_header(topic, since_ms, name, value, deadline)?;
        Ok(found.map(|r| Delivery { partition: r.partition, offset: r.offset }))
    }
}
