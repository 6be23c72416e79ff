//! One error type for the whole core: an HTTP-valued status and a message safe to show a client.

use std::fmt;

/// Outcome classes; the numeric value is the HTTP status a gateway answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The broker acknowledged the record.
    Ok = 200,
    /// The request does not match the schema or the contract.
    BadRequest = 400,
    /// The Kafka cluster's ACLs refuse the gateway's principal (topic, cluster or transactional
    /// id): a configuration fault, not worth retrying until the ACLs change.
    Forbidden = 403,
    /// The topic's schema does not exist.
    NotFound = 404,
    /// The message, key or headers are over a configured limit.
    PayloadTooLarge = 413,
    /// A fault inside topicgate or a broken schema.
    InternalError = 500,
    /// Broker or registry unreachable, or the producer queue is full: retry later.
    Unavailable = 503,
    /// The broker did not acknowledge within the delivery timeout.
    Timeout = 504,
}

impl Status {
    /// The HTTP status code.
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// An error with its status; `message` never holds secrets or payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// HTTP-valued class of the error.
    pub status: Status,
    /// Human-readable text naming what went wrong and where.
    pub message: String,
}

impl Error {
    /// An error of the given status.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error { status, message: message.into() }
    }

    /// A `400`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, message)
    }

    /// A `403`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Status::Forbidden, message)
    }

    /// A `404`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Status::NotFound, message)
    }

    /// A `413`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(Status::PayloadTooLarge, message)
    }

    /// A `500`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Status::InternalError, message)
    }

    /// A `503`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Status::Unavailable, message)
    }

    /// A `504`.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Status::Timeout, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.code(), self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the core.
pub type Result<T> = std::result::Result<T, Error>;
