//! A record checked and encoded, ready to produce. Its own module because batches hold such
//! records and transactions write them: neither should depend on the other for the type.

use crate::producer::Placement;

/// One checked record: its encoded value (framing included), key and headers.
#[derive(Debug)]
pub struct Encoded {
    /// The value as produced.
    pub value: Vec<u8>,
    /// The record key, if any.
    pub key: Option<Vec<u8>>,
    /// Record headers, in order.
    pub headers: Vec<crate::headers::Header>,
    /// Its partition and timestamp, if the caller chose them.
    pub placement: Placement,
    /// The formats its value and key were encoded with.
    pub formats: crate::completion::Formats,
}
