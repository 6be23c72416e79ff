//! Process-global cache of compiled schemas, refreshed in the background, last good kept on failure;
//! "not found" answers are remembered for a while too. It reports its outcomes and entries to
//! crate::metrics, which does not look into it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use crate::config::{MessageType, SchemaVersion};
use crate::error::{Error, Result, Status};
use crate::metrics::{CachedSchemaState, SCHEMA};
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
/// Schemas the registry said it does not have: the error, and until when (ms since `EPOCH`) to repeat it.
static MISSING: LazyLock<RwLock<HashMap<CacheKey, (u64, Error)>>> = LazyLock::new(Default::default);
/// Most remembered misses; past it, expired ones are dropped and new ones not remembered, so
/// requests for ever-new names cannot grow memory without bound.
const MAX_MISSING: usize = 10_000;

/// How long cached answers stay good.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Age after which a `latest` schema is re-fetched in the background.
    pub refresh_interval: Duration,
    /// How long a "not found" is repeated without asking the registry; zero: never remembered.
    pub not_found_ttl: Duration,
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
    let refresh_interval = timing.refresh_interval;
    let cached = CACHE.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
    if let Some(slot) = cached {
        let schema = slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone();
        if now_ms() >= slot.refresh_due_ms.load(Ordering::Relaxed) {
            SCHEMA.stale_served.fetch_add(1, Ordering::Relaxed);
            if !slot.refreshing.swap(true, Ordering::AcqRel) {
                spawn_refresh(registry.clone(), key.clone(), slot, refresh_interval);
            }
        } else {
            SCHEMA.hits.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(schema);
    }
    SCHEMA.misses.fetch_add(1, Ordering::Relaxed);
    if let Some(e) = remembered_miss(key) {
        return Err(e);
    }
    let schema = match fetch_and_compile(registry.clone(), key.clone()) {
        Ok(schema) => Arc::new(schema),
        Err(e) if e.status == Status::NotFound => {
            remember_miss(key, &e, timing.not_found_ttl);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let due = match key.version {
        SchemaVersion::Latest => now_ms() + refresh_interval.as_millis() as u64,
        SchemaVersion::Number(_) => u64::MAX,
    };
    // Made only if it wins the race to be cached, so that the metrics list each schema once.
    CACHE.write().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_insert_with(|| {
        Arc::new(Slot {
            schema: RwLock::new(schema.clone()),
            metrics: CachedSchemaState::register(&key.schema_name, schema.version_number),
            refresh_due_ms: AtomicU64::new(due),
            refreshing: AtomicBool::new(false),
        })
    });
    Ok(schema)
}

/// The "not found" remembered for `key`, if still fresh.
fn remembered_miss(key: &CacheKey) -> Option<Error> {
    let missing = MISSING.read().unwrap_or_else(|p| p.into_inner());
    match missing.get(key) {
        Some((until, e)) if now_ms() < *until => Some(e.clone()),
        _ => None,
    }
}

fn remember_miss(key: &CacheKey, e: &Error, ttl: Duration) {
    if ttl.is_zero() {
        return;
    }
    let now = now_ms();
    let mut missing = MISSING.write().unwrap_or_else(|p| p.into_inner());
    if missing.len() >= MAX_MISSING {
        missing.retain(|_, (until, _)| now < *until);
    }
    if missing.len() < MAX_MISSING {
        missing.insert(key.clone(), (now + ttl.as_millis() as u64, e.clone()));
    }
}

fn fetch_and_compile(registry: Arc<Registry>, key: CacheKey) -> Result<CompiledSchema> {
    SCHEMA.fetches.fetch_add(1, Ordering::Relaxed);
    let compiled = runtime::block_on(async move { registry.fetch(&key.schema_name, key.version).await })
        .and_then(|fetched| fetched)
        .and_then(|text| schema::compile(&text, &key.message_type));
    // A schema the registry does not have is an answer, not a failure to fetch.
    if matches!(&compiled, Err(e) if e.status != Status::NotFound) {
        SCHEMA.fetch_failures.fetch_add(1, Ordering::Relaxed);
    }
    compiled
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
        SCHEMA.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = registry.fetch(&key.schema_name, key.version).await;
        let current = slot.schema.read().unwrap_or_else(|p| p.into_inner()).clone();
        // None: the registry gave the schema in use again, unchanged. A changed one is compiled on
        // a blocking thread: the runtime's one worker serves every other registry call meanwhile.
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
                if let Some(new) = changed {
                    log::info!(
                        "schema `{}` refreshed to version {}",
                        key.schema_name,
                        new.version_number.map_or("(file)".to_owned(), |n| n.to_string())
                    );
                    *slot.schema.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                }
                slot.metrics.fetched(version);
                interval
            }
            Err(e) => {
                SCHEMA.fetch_failures.fetch_add(1, Ordering::Relaxed);
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
