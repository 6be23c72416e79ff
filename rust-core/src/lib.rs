//! topicgate core: publish JSON to Kafka as schema-checked Protobuf, behind a C ABI.
//!
//! The Rust API is [`Publisher`]; the C ABI (`tg_*`, header `include/topicgate.h`) wraps it.

mod aws;
pub mod batch;
pub mod completion;
pub mod config;
pub mod decoding;
pub mod delivery;
pub mod encoded;
pub mod encoding;
pub mod error;
pub mod ffi;
pub mod ffi_intent;
pub mod ffi_read;
pub mod headers;
pub mod idempotency;
mod logging;
pub mod metrics;
pub mod producer;
pub mod publisher;
pub mod read_page;
pub mod reader;
pub mod registry;
mod runtime;
pub mod schema;
mod schema_cache;
pub mod security;
mod transaction;
pub mod value_schema;
pub mod wire;

pub use batch::Batch;
pub use completion::{Completion, CompletionQueue};
pub use config::Config;
pub use delivery::Delivery;
pub use error::{Error, Result, Status};
pub use producer::Placement;
pub use publisher::{Publisher, Record};
