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
pub mod tail;
mod transaction;
pub mod value_schema;
pub mod wire;

/// The allocator of the core's Rust code (not the host's, nor librdkafka's): mimalloc serves the
/// many small, short-lived values of an encode or decode about a fifth faster than glibc's malloc
/// (bench/README.md, issue #23). Every pointer the core hands out is freed by the core (`tg_*_free`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use batch::Batch;
pub use completion::{Completion, CompletionQueue};
pub use config::Config;
pub use delivery::Delivery;
pub use error::{Error, Result, Status};
pub use producer::Placement;
pub use publisher::{Publisher, Record};
