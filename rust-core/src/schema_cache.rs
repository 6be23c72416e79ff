//! Process-global cache of compiled schemas, refreshed in the background, last good kept on failure;
//! "not found" answers and failed lookups are remembered for a while too. It reports its outcomes
//! and entries to crate::metrics, which does not look into it.
//!
//! A schema that is not cached is looked up once however many requests want it (one "flight" per
//! key: fetched on the core's runtime, compiled on one of its blocking threads); the requests wait
//! for it, each at most the registry's bound plus `COMPILE_GRACE`. At most `MAX_WAITING` requests
//! wait at once in the whole process; the next is answered `503` at once, so that a registry
//! outage cannot park an ever-growing number of the host's threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::{MessageType, SchemaVersion};
use crate::error::{Error, Result, Status};
use crate::metrics::{schema_counters, CachedSchemaState, FormatLabel, RegistryKind, SchemaCounters};
use crate::registry::Registry;
use crate::runtime;
use crate::schema::{self, CompiledSchema};

/// What identifies a cached schema: the registry, the schema, the version asked for, the message type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The registry's configuration, serialized.
    pub registry: String,
    /// Schema name in that registry.
    pub schema_name: String,
    /// Version selector.
    pub version: SchemaVersion,
    /// Message selector.
    pub message_type: MessageType,
    /// A Confluent global schema id: the schema is fetched by id (`schema_name` then only names it
    /// in messages and metrics, and `version` is not used). What an id names never changes, so
    /// it is never refreshed.
    pub schema_id: Option<u32>,
    /// A Glue schema version's UUID: fetched by it (GetSchemaVersion by id), never refreshed.
    pub glue_version: Option<uuid::Uuid>,
}

struct Slot {
    schema: RwLock<Arc<CompiledSchema>>,
    /// What the metrics show of it: told the version in use and when it was last fetched.
    metrics: Arc<CachedSchemaState>,
    /// Milliseconds since `EPOCH` after which a refresh is due; `u64::MAX` for pinned versions.
    refresh_due_ms: AtomicU64,
    refreshing: AtomicBool,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
static CACHE: LazyLock<RwLock<HashMap<CacheKey, Arc<Slot>>>> = LazyLock::new(Default::default);
/// Lookups that failed (the registry does not have the schema, or could not give it): the error,
/// and until when (ms since `EPOCH`) to repeat it.
static REMEMBERED: LazyLock<RwLock<HashMap<CacheKey, (u64, Error)>>> = LazyLock::new(Default::default);
/// Most remembered failures; past it, expired ones are dropped and new ones not remembered, so
/// requests for ever-new names cannot grow memory without bound.
const MAX_REMEMBERED: usize = 10_000;
/// How long a failed lookup other than "not found" (registry unreachable, timed out, refusing;
/// a schema that does not compile) is answered from memory.
const FAILURE_TTL: Duration = Duration::from_secs(1);
/// Most requests that may wait for registry lookups at once, in the whole process.
const MAX_WAITING: usize = 128;
/// How long past the registry's bound a request waits for the fetched schema to compile.
const COMPILE_GRACE: Duration = Duration::from_secs(1);

/// Lookups in flight, by key; a flight leaves this map only after its outcome is cached or remembered.
static FLIGHTS: LazyLock<Mutex<HashMap<CacheKey, Arc<Flight>>>> = LazyLock::new(Default::default);
/// Requests waiting for a flight now.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// How long cached answers stay good.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Age after which a `latest` schema is re-fetched in the background.
    pub refresh_interval: Duration,
    /// How long a "not found" is repeated without asking the registry; zero: never remembered.
    pub not_found_ttl: Duration,
}

/// The metrics label of a compiled schema's format.
fn format_label(schema: &CompiledSchema) -> FormatLabel {
    match schema.format {
        schema::Format::Protobuf { .. } => FormatLabel::Protobuf,
        schema::Format::Avro(_) => FormatLabel::Avro,
        schema::Format::JsonSchema(_) => FormatLabel::Json,
    }
}

/// The counters of `registry` for `schema`'s format.
fn counters(registry: &Registry, schema: &CompiledSchema) -> &'static SchemaCounters {
    schema_counters(registry.kind(), format_label(schema))
}

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// Retry a failed refresh after a tenth of the interval, within 1–30 s.
fn retry_delay(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Returns the compiled schema for `key`, fetching it on first use; a stale entry is served
/// while one background task refreshes it.
pub fn lookup(registry: &Arc<Registry>, key: &CacheKey, timing: Timing) -> Result<Arc<CompiledSchema>> {
    let cached = CACHE.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
    if let Some(slot) = cached {
        let schema = slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone();
        if now_ms() >= slot.refresh_due_ms.load(Ordering::Relaxed) {
            counters(registry, &schema).stale_served.fetch_add(1, Ordering::Relaxed);
            if !slot.refreshing.swap(true, Ordering::AcqRel) {
                spawn_refresh(registry.clone(), key.clone(), slot, timing.refresh_interval);
            }
        } else {
            counters(registry, &schema).hits.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(schema);
    }
    // A miss is counted under the format its lookup found (none known when it failed).
    let outcome = lookup_missed(registry, key, timing);
    let format = outcome.as_ref().map_or(FormatLabel::Unknown, |s| format_label(s));
    schema_counters(registry.kind(), format).misses.fetch_add(1, Ordering::Relaxed);
    outcome
}

/// A lookup of a schema not cached: a remembered failure, or the flight's outcome.
fn lookup_missed(registry: &Arc<Registry>, key: &CacheKey, timing: Timing) -> Result<Arc<CompiledSchema>> {
    if let Some(e) = remembered(key) {
        return Err(e);
    }
    let _waiting = Waiting::enter(&key.schema_name)?;
    let flight = match join_or_start(registry, key, timing) {
        Joined::Ready(outcome) => return outcome,
        Joined::Wait(flight) => flight,
    };
    let bound = registry.bound() + COMPILE_GRACE;
    flight.wait(bound).unwrap_or_else(|| {
        Err(Error::unavailable(format!(
            "schema `{}`: the schema registry lookup did not finish within {} ms",
            key.schema_name,
            bound.as_millis()
        )))
    })
}

/// A request's place among those waiting for registry lookups; given back when dropped.
struct Waiting;

impl Waiting {
    /// Takes a place, or refuses at once with a `503` when `MAX_WAITING` are taken.
    fn enter(schema_name: &str) -> Result<Waiting> {
        if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::unavailable(format!(
                "schema `{schema_name}` is not cached and {MAX_WAITING} requests already wait for the \
                 schema registry (the core's limit of concurrent registry lookups); retry later"
            )));
        }
        Ok(Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One lookup of one key, shared by every request that waits for it.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Result<Arc<CompiledSchema>>>>,
    done: Condvar,
}

impl Flight {
    /// The outcome, or `None` if there is none after `bound`.
    fn wait(&self, bound: Duration) -> Option<Result<Arc<CompiledSchema>>> {
        let until = Instant::now() + bound;
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return Some(outcome.clone());
            }
            let left = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            outcome = self.done.wait_timeout(outcome, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

enum Joined {
    /// Decided while joining: a flight finished just before.
    Ready(Result<Arc<CompiledSchema>>),
    Wait(Arc<Flight>),
}

/// The flight for `key`: the one in progress, else a new one started on the runtime.
fn join_or_start(registry: &Arc<Registry>, key: &CacheKey, timing: Timing) -> Joined {
    let mut flights = FLIGHTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flight) = flights.get(key) {
        return Joined::Wait(flight.clone());
    }
    // A flight caches or remembers its outcome before it leaves the map: look again.
    if let Some(slot) = CACHE.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return Joined::Ready(Ok(slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone()));
    }
    if let Some(e) = remembered(key) {
        return Joined::Ready(Err(e));
    }
    let handle = match runtime::handle() {
        Ok(handle) => handle,
        Err(e) => return Joined::Ready(Err(e)),
    };
    let flight = Arc::new(Flight::default());
    flights.insert(key.clone(), flight.clone());
    let landing =
        Landing { key: key.clone(), registry: registry.kind(), flight: flight.clone(), timing, landed: false };
    let registry = registry.clone();
    handle.spawn(async move {
        let outcome = fetch_and_compile(&registry, &landing.key).await;
        landing.land(outcome);
    });
    Joined::Wait(flight)
}

/// Ends a flight: its outcome cached or remembered, then handed to the waiting requests. Dropped
/// without landing (the task panicked or was cancelled), it lands a `500`, so that no key is left
/// with a flight that never ends.
struct Landing {
    key: CacheKey,
    registry: RegistryKind,
    flight: Arc<Flight>,
    timing: Timing,
    landed: bool,
}

impl Landing {
    fn land(mut self, outcome: Result<CompiledSchema>) {
        self.landed = true;
        let outcome = match outcome {
            Ok(schema) => Ok(cache(&self.key, self.registry, Arc::new(schema), self.timing.refresh_interval)),
            Err(e) => {
                let ttl = if e.status == Status::NotFound { self.timing.not_found_ttl } else { FAILURE_TTL };
                remember(&self.key, &e, ttl);
                Err(e)
            }
        };
        self.finish(outcome);
    }

    fn finish(&self, outcome: Result<Arc<CompiledSchema>>) {
        FLIGHTS.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
        *self.flight.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.flight.done.notify_all();
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed {
            self.finish(Err(Error::internal(format!(
                "schema `{}`: the registry lookup ended without an answer",
                self.key.schema_name
            ))));
        }
    }
}

/// Caches `schema` for `key` (or keeps the entry already there) and returns what is cached.
fn cache(
    key: &CacheKey,
    registry: RegistryKind,
    schema: Arc<CompiledSchema>,
    refresh_interval: Duration,
) -> Arc<CompiledSchema> {
    // A schema found by its id never changes: refreshed never, like a pinned version.
    let due = match (key.schema_id, key.glue_version, key.version) {
        (None, None, SchemaVersion::Latest) => now_ms() + refresh_interval.as_millis() as u64,
        _ => u64::MAX,
    };
    // Made only if it is the first, so that the metrics list each schema once.
    let mut cache = CACHE.write().unwrap_or_else(|p| p.into_inner());
    let slot = cache.entry(key.clone()).or_insert_with(|| {
        Arc::new(Slot {
            schema: RwLock::new(schema.clone()),
            metrics: CachedSchemaState::register(
                &key.schema_name,
                registry,
                schema.version_number,
                format_label(&schema),
            ),
            refresh_due_ms: AtomicU64::new(due),
            refreshing: AtomicBool::new(false),
        })
    });
    let cached = slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone();
    cached
}

/// The failure remembered for `key`, if still fresh.
fn remembered(key: &CacheKey) -> Option<Error> {
    let remembered = REMEMBERED.read().unwrap_or_else(|p| p.into_inner());
    match remembered.get(key) {
        Some((until, e)) if now_ms() < *until => Some(e.clone()),
        _ => None,
    }
}

fn remember(key: &CacheKey, e: &Error, ttl: Duration) {
    let now = now_ms();
    let mut remembered = REMEMBERED.write().unwrap_or_else(|p| p.into_inner());
    if ttl.is_zero() {
        // Not remembered; an older answer must not outlive this one either.
        remembered.remove(key);
        return;
    }
    if remembered.len() >= MAX_REMEMBERED {
        remembered.retain(|_, (until, _)| now < *until);
    }
    if remembered.len() < MAX_REMEMBERED || remembered.contains_key(key) {
        remembered.insert(key.clone(), (now + ttl.as_millis() as u64, e.clone()));
    }
}

/// Fetches the schema text (within the registry's bound) and compiles it on a blocking thread.
/// Counted under the format the registry gave (unknown when it gave none).
async fn fetch_and_compile(registry: &Registry, key: &CacheKey) -> Result<CompiledSchema> {
    let (format, compiled) = match fetch_text(registry, key).await {
        Ok(text) => {
            let format = text.format.label();
            let message_type = key.message_type.clone();
            let compiled = runtime::run_blocking(move || schema::compile(&text, &message_type)).await;
            (format, compiled.map_err(|e| from_registry(registry, e)))
        }
        Err(e) => (FormatLabel::Unknown, Err(e)),
    };
    let counters = schema_counters(registry.kind(), format);
    counters.fetches.fetch_add(1, Ordering::Relaxed);
    // A schema the registry does not have is an answer, not a failure to fetch.
    if matches!(&compiled, Err(e) if e.status != Status::NotFound) {
        counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
    }
    compiled
}

/// A Confluent-compatible registry's schema that does not compile is the registry's data at
/// fault, not topicgate's: `503` (retriable once the subject is fixed there), not `500`.
fn from_registry(registry: &Registry, e: Error) -> Error {
    if registry.kind() == RegistryKind::Confluent && e.status == Status::InternalError {
        Error::unavailable(format!("schema registry gave a schema that does not compile: {}", e.message))
    } else {
        e
    }
}

/// The text `key` names: by its schema id when it has one, else by name and version.
async fn fetch_text(registry: &Registry, key: &CacheKey) -> Result<crate::registry::SchemaText> {
    match (key.schema_id, key.glue_version) {
        (Some(id), _) => registry.fetch_id(id).await,
        (None, Some(v)) => registry.fetch_glue_version(v).await,
        (None, None) => registry.fetch(&key.schema_name, key.version).await,
    }
}

fn spawn_refresh(registry: Arc<Registry>, key: CacheKey, slot: Arc<Slot>, interval: Duration) {
    let handle = match runtime::handle() {
        Ok(h) => h,
        Err(_) => {
            slot.refreshing.store(false, Ordering::Release);
            return;
        }
    };
    handle.spawn(async move {
        let fetched = fetch_text(&registry, &key).await;
        let current = slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone();
        // Counted under the format the registry gave, else the cached schema's.
        let format = fetched.as_ref().map_or(format_label(&current), |t| t.format.label());
        let counters = schema_counters(registry.kind(), format);
        counters.fetches.fetch_add(1, Ordering::Relaxed);
        // None: the registry gave the schema in use again, unchanged.
        let refreshed = match fetched {
            Ok(text) if schema::fingerprint(&text) == current.fingerprint => Ok(None),
            Ok(text) => {
                let message_type = key.message_type.clone();
                runtime::run_blocking(move || schema::compile(&text, &message_type).map(Some)).await
            }
            Err(e) => Err(e),
        };
        let next_due = match refreshed {
            Ok(changed) => {
                let version = changed.as_ref().map_or(current.version_number, |new| new.version_number);
                let format = changed.as_ref().map_or(format_label(&current), format_label);
                if let Some(new) = changed {
                    log::info!(
                        "schema `{}` refreshed to version {}",
                        key.schema_name,
                        new.version_number.map_or("(file)".to_owned(), |n| n.to_string())
                    );
                    *slot.schema.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                }
                slot.metrics.fetched(version, format);
                interval
            }
            Err(e) => {
                counters.fetch_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("schema `{}` refresh kept the cached version: {}", key.schema_name, e.message);
                retry_delay(interval)
            }
        };
        slot.refresh_due_ms.store(now_ms() + next_due.as_millis() as u64, Ordering::Relaxed);
        slot.refreshing.store(false, Ordering::Release);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_is_bounded() {
        assert_eq!(retry_delay(Duration::from_millis(100)), Duration::from_secs(1));
        assert_eq!(retry_delay(Duration::from_secs(100)), Duration::from_secs(10));
        assert_eq!(retry_delay(Duration::from_secs(3600)), Duration::from_secs(30));
    }
}
