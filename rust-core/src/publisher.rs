//! A publisher: config + shared producer + schema cache, checking and sending one record per call
//! (batches: crate::batch).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::completion::{Completion, CompletionQueue, Formats};
use crate::config::{Config, RegistryConfig, SchemaVersion, ValueFormat};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::headers;
use crate::producer::{Placement, Producer, Reply};
use crate::registry::Registry;
use crate::schema::CompiledSchema;
use crate::schema_cache::{self, CacheKey};
use crate::transaction::Transactions;
use crate::value_schema::{ValueSchema, ValueType};
use crate::wire::Framing;

/// Publishes JSON bodies as schema-checked records (Protobuf, Avro or JSON Schema); cheap to share across threads.
#[derive(Debug)]
pub struct Publisher {
    config: Config,
    registry: Arc<Registry>,
    registry_key: String,
    /// `None` in dry-run mode: no connection to Kafka is ever made.
    producer: Option<Arc<Producer>>,
    /// Outcomes of records begun with [`Publisher::start`].
    completions: Arc<CompletionQueue>,
    /// Transactional producers for all-or-nothing batches (shared with the publishers of the same
    /// Kafka settings); `None` in dry-run mode.
    transactions: Option<Arc<Transactions>>,
}

/// One record to publish.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Target topic; also selects the schema.
    pub topic: &'a str,
    /// The JSON body.
    pub json: &'a str,
    /// Record headers, in order.
    pub headers: &'a [crate::headers::Header],
    /// Record key; `None` lets the partitioner choose freely. With `key_schema`: the key's JSON
    /// text, encoded with the topic's key schema (and then required).
    pub key: Option<&'a [u8]>,
}

impl Publisher {
    /// Validates `config_json` and builds the publisher; no network call is made yet.
    pub fn new(config_json: &str) -> Result<Publisher> {
        let config = Config::from_json(config_json)?;
        let registry = Arc::new(Registry::new(&config.registry)?);
        let registry_key = format!("{:?}", config.registry);
        let properties = config.producer_properties()?;
        let producer = match config.dry_run {
            true => None,
            false => Some(Producer::shared(&properties, config.delivery_timeout(), config.kafka.auth.as_ref())?),
        };
        let transactions = match config.dry_run {
            true => None,
            false => Some(Transactions::shared(
                properties,
                config.kafka.auth.clone(),
                config.delivery_timeout(),
                &config.transactions,
            )?),
        };
        Ok(Publisher { config, registry, registry_key, producer, completions: Arc::default(), transactions })
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Checks, encodes and produces `record`, returning once the broker acknowledged it.
    /// In dry-run mode nothing is produced and the delivery is partition -1, offset -1.
    pub fn publish(&self, record: &Record<'_>) -> Result<Delivery> {
        let (value, key) = self.encode_with(&mut Schemas::default(), record)?;
        match &self.producer {
            Some(producer) => producer.send(record.topic, &value, key.as_deref(), record.headers),
            None => Ok(Delivery::DRY_RUN),
        }
    }

    /// Checks, encodes and queues `record` without waiting. `Ok` means it is queued and its outcome
    /// will be taken by [`Publisher::completions`] exactly once, tagged with `token`, within the
    /// delivery timeout; an error means it was not queued and no completion follows.
    /// In dry-run mode the completion (partition -1, offset -1) is ready at once.
    pub fn start(&self, record: &Record<'_>, placement: Placement, token: u64) -> Result<()> {
        self.start_selected(record, None, placement, token)
    }

    /// [`Publisher::start`], the value's schema chosen by `value_schema` when given (see
    /// [`ValueSchema`]).
    pub fn start_selected(
        &self,
        record: &Record<'_>,
        value_schema: Option<&ValueSchema>,
        placement: Placement,
        token: u64,
    ) -> Result<()> {
        placement.check()?;
        let (value, key, formats) = self.encode_described(&mut Schemas::default(), record, value_schema)?;
        match &self.producer {
            Some(producer) => {
                let reply = Reply::Queue { queue: self.completions.clone(), token, value_len: value.len(), formats };
                producer.enqueue(record.topic, &value, key.as_deref(), record.headers, placement, reply)
            }
            None => {
                self.completions.push_encoded(token, 0, formats, Ok(Delivery::DRY_RUN));
                Ok(())
            }
        }
    }

    /// Moves up to `max` outcomes of started records into `out`, waiting up to `timeout` for the
    /// first; returns how many were moved.
    pub fn completions(&self, out: &mut Vec<Completion>, max: usize, timeout: Duration) -> usize {
        self.completions.take(out, max, timeout)
    }

    /// Everything `publish` does before producing: limits, schema lookup, encoding, framing; the value.
    pub fn encode(&self, record: &Record<'_>) -> Result<Vec<u8>> {
        Ok(self.encode_with(&mut Schemas::default(), record)?.0)
    }

    /// [`Publisher::encode`], with the key as produced: the caller's bytes, or with `key_schema`
    /// the key's JSON encoded and framed like the value.
    pub fn encode_with_key(&self, record: &Record<'_>) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let (value, key) = self.encode_with(&mut Schemas::default(), record)?;
        Ok((value, key.map(Cow::into_owned)))
    }

    /// The value and key of `record` as produced, with the topic's schemas looked up into `schemas`
    /// when they are `None` and reused when they are not (a batch's records share one lookup, and
    /// one schema version). `schemas` must only ever hold `record.topic`'s schemas.
    pub(crate) fn encode_with<'a>(
        &self,
        schemas: &mut Schemas,
        record: &Record<'a>,
    ) -> Result<(Vec<u8>, Option<KeyBytes<'a>>)> {
        self.encode_selected(schemas, record, None)
    }

    /// `encode_with`, the value's schema chosen by `value_schema` when given (see
    /// [`ValueSchema`]): a selected schema is looked up on its own (not into `schemas`) and frames
    /// the value in Confluent's wire format; its `format` must be the schema's.
    pub(crate) fn encode_selected<'a>(
        &self,
        schemas: &mut Schemas,
        record: &Record<'a>,
        value_schema: Option<&ValueSchema>,
    ) -> Result<(Vec<u8>, Option<KeyBytes<'a>>)> {
        let (value, key, _) = self.encode_described(schemas, record, value_schema)?;
        Ok((value, key))
    }

    /// [`Publisher::encode_selected`], also saying which formats the value and key were encoded with.
    pub(crate) fn encode_described<'a>(
        &self,
        schemas: &mut Schemas,
        record: &Record<'a>,
        value_schema: Option<&ValueSchema>,
    ) -> Result<(Vec<u8>, Option<KeyBytes<'a>>, Formats)> {
        let mut formats = Formats::default();
        check_topic(record.topic)?;
        let limits = &self.config.limits;
        if record.json.len() > limits.max_message_bytes {
            return Err(Error::too_large(format!(
                "body is {} bytes, the limit is {} (limits.max_message_bytes)",
                record.json.len(),
                limits.max_message_bytes
            )));
        }
        if let Some(key) = record.key {
            if key.len() > limits.max_key_bytes {
                return Err(Error::too_large(format!(
                    "key is {} bytes, the limit is {} (limits.max_key_bytes)",
                    key.len(),
                    limits.max_key_bytes
                )));
            }
        }
        let key_text = match (&self.config.key_schema, record.key) {
            (None, _) => None,
            // A consumer that reads keys with the key schema expects one on every record, and a
            // record without it silently loses its partition: refused rather than written keyless.
            (Some(_), None) => {
                return Err(Error::bad_request(
                    "key: missing; this topic's keys are encoded with a schema (key_schema), so every record needs a JSON key",
                ))
            }
            (Some(_), Some(key)) => Some(std::str::from_utf8(key).map_err(|e| {
                Error::bad_request(format!("key: not valid UTF-8 (at byte {}); send the key as JSON", e.valid_up_to()))
            })?),
        };
        headers::check(record.headers, limits)?;
        let value = match value_schema.filter(|v| v.selects()) {
            Some(v) => {
                let timing = self.timing();
                let selected = schema_cache::lookup(&self.registry, &self.selected_key(record.topic, v)?, timing)?;
                v.check_format(&selected)?;
                formats.value = ValueType::of(&selected).code();
                // A selected schema is a Confluent registry's: framed as Confluent's serializers do.
                let encoded = selected.encode(record.json, self.config.schema.allow_unknown_fields)?;
                Framing::Confluent { prefix: confluent_prefix(&selected)? }.frame(encoded)
            }
            None => {
                let schema = self.schema(&mut schemas.value, record.topic, false)?;
                if let Some(v) = value_schema {
                    v.check_format(schema)?;
                }
                formats.value = ValueType::of(schema).code();
                self.frame(schema, schema.encode(record.json, self.config.schema.allow_unknown_fields)?)?
            }
        };
        let key = match key_text {
            None => record.key.map(Cow::Borrowed),
            Some(text) => {
                let key_schema = self.schema(&mut schemas.key, record.topic, true)?;
                let encoded = key_schema.encode(text, self.config.schema.allow_unknown_fields).map_err(key_error)?;
                formats.key = ValueType::of(key_schema).code();
                Some(Cow::Owned(self.frame(key_schema, encoded)?))
            }
        };
        formats.key_len = key.as_ref().map_or(0, |k| k.len());
        Ok((value, key, formats))
    }

    /// The topic's value schema from the cache, as the read side decodes with it.
    pub(crate) fn value_schema(&self, topic: &str) -> Result<Arc<CompiledSchema>> {
        schema_cache::lookup(&self.registry, &self.cache_key(topic), self.timing())
    }

    /// A Confluent registry's schema by its global id, from the cache (decoding records written
    /// with another schema version than the topic's current one).
    pub(crate) fn schema_by_confluent_id(&self, id: u32) -> Result<Arc<CompiledSchema>> {
        let selector = ValueSchema { schema_id: Some(id), ..ValueSchema::default() };
        schema_cache::lookup(&self.registry, &self.selected_key("", &selector)?, self.timing())
    }

    /// The topic's key schema when the core has `key_schema` (the read side decodes keys with
    /// it), else `None`.
    pub(crate) fn key_schema(&self, topic: &str) -> Result<Option<Arc<CompiledSchema>>> {
        if self.config.key_schema.is_none() {
            return Ok(None);
        }
        schema_cache::lookup(&self.registry, &self.key_cache_key(topic)?, self.timing()).map(Some)
    }

    /// The schema version of Glue `version` (a value, or with `key` a key, of `topic` framed
    /// with it), read with the value's (key's) message type: cached like the topic's own schema,
    /// never refreshed (a version's text never changes).
    pub(crate) fn schema_by_glue_version(
        &self,
        topic: &str,
        version: uuid::Uuid,
        key: bool,
    ) -> Result<Arc<CompiledSchema>> {
        let base = match key {
            false => self.cache_key(topic),
            true => self.key_cache_key(topic)?,
        };
        let cache_key = CacheKey {
            schema_name: format!("{} version {version}", base.schema_name),
            version: SchemaVersion::Latest,
            glue_version: Some(version),
            ..base
        };
        schema_cache::lookup(&self.registry, &cache_key, self.timing())
    }

    /// How long cached schemas stay fresh and misses are remembered.
    fn timing(&self) -> schema_cache::Timing {
        schema_cache::Timing {
            refresh_interval: Duration::from_millis(self.config.schema.refresh_interval_ms),
            not_found_ttl: Duration::from_millis(self.config.schema.not_found_ttl_ms),
        }
    }

    /// The topic's value (or key) schema: `slot`'s, else looked up in the cache into `slot`.
    fn schema<'s>(
        &self,
        slot: &'s mut Option<Arc<CompiledSchema>>,
        topic: &str,
        key: bool,
    ) -> Result<&'s CompiledSchema> {
        if let Some(schema) = slot {
            return Ok(schema);
        }
        let cache_key = match key {
            false => self.cache_key(topic),
            true => self.key_cache_key(topic)?,
        };
        Ok(slot.insert(schema_cache::lookup(&self.registry, &cache_key, self.timing())?))
    }

    /// Frames encoded bytes as `value_format` says (keys and values alike).
    fn frame(&self, schema: &CompiledSchema, message: Vec<u8>) -> Result<Vec<u8>> {
        let framing = match self.config.value_format {
            ValueFormat::Raw => Framing::Raw,
            ValueFormat::Glue => Framing::Glue {
                schema_version_id: schema
                    .version_id
                    .ok_or_else(|| Error::internal("glue framing needs a schema version id"))?,
                message_index: schema.message_index(),
                compression: self.config.glue_compression,
            },
            ValueFormat::Confluent => Framing::Confluent { prefix: confluent_prefix(schema)? },
        };
        Ok(framing.frame(message))
    }

    /// Waits until every record queued on this publisher's producer is delivered.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        match &self.producer {
            Some(producer) => producer.flush(timeout),
            None => Ok(()),
        }
    }

    /// The shared producer; `None` in dry-run mode.
    pub(crate) fn producer(&self) -> Option<&Producer> {
        self.producer.as_deref()
    }

    /// Where started records' outcomes go.
    pub(crate) fn completion_queue(&self) -> Arc<CompletionQueue> {
        self.completions.clone()
    }

    /// The transactional producers; `None` in dry-run mode.
    pub(crate) fn transactions(&self) -> Option<&Transactions> {
        self.transactions.as_deref()
    }

    /// The key schema's cache entry: the same cache as values, an entry of its own.
    fn key_cache_key(&self, topic: &str) -> Result<CacheKey> {
        match (&self.config.key_schema, self.config.key_schema_name(topic)) {
            (Some(key), Some(schema_name)) => Ok(CacheKey {
                registry: self.registry_key.clone(),
                schema_name,
                version: key.version,
                message_type: key.message_type.clone(),
                schema_id: None,
                glue_version: None,
            }),
            _ => Err(Error::internal("no key schema is configured")),
        }
    }

    fn cache_key(&self, topic: &str) -> CacheKey {
        CacheKey {
            registry: self.registry_key.clone(),
            schema_name: self.config.schema_name(topic),
            version: self.config.schema.version,
            message_type: self.config.schema.message_type.clone(),
            schema_id: None,
            glue_version: None,
        }
    }

    /// The cache key of a record's selected value schema: by id, or by subject (the topic's
    /// configured one when not given) and version. `400` unless the registry is Confluent's.
    fn selected_key(&self, topic: &str, v: &ValueSchema) -> Result<CacheKey> {
        if !matches!(self.config.registry, RegistryConfig::Confluent { .. }) {
            return Err(Error::bad_request(
                "value schema: schema_id, subject and schema_version need a Confluent schema registry \
                 (registry.kind \"confluent\")",
            ));
        }
        let (schema_name, version) = match v.schema_id {
            Some(id) => (format!("schema id {id}"), SchemaVersion::Latest),
            None => (v.subject.clone().unwrap_or_else(|| self.config.schema_name(topic)), v.schema_version()),
        };
        Ok(CacheKey {
            registry: self.registry_key.clone(),
            schema_name,
            version,
            message_type: self.config.schema.message_type.clone(),
            schema_id: v.schema_id,
            glue_version: None,
        })
    }
}

/// A record key as produced: the caller's bytes as given, or encoded with the key schema.
type KeyBytes<'a> = Cow<'a, [u8]>;

/// The schemas a record is encoded with, each looked up on first need and then reused.
#[derive(Debug, Default)]
pub(crate) struct Schemas {
    /// The topic's value schema.
    pub(crate) value: Option<Arc<CompiledSchema>>,
    /// The topic's key schema (only with `key_schema`).
    pub(crate) key: Option<Arc<CompiledSchema>>,
}

/// A key the key schema refuses: the encoder words it as a body's error (`body: …`, ``field `x`:
/// …``); it is said of the key instead, always as `key: …`, so a caller can tell where it lies.
/// A schema's Confluent wire-format prefix (magic byte, schema id, Protobuf message indexes).
fn confluent_prefix(schema: &CompiledSchema) -> Result<&[u8]> {
    schema.confluent_prefix.as_deref().ok_or_else(|| Error::internal("confluent framing needs a Confluent schema id"))
}

fn key_error(e: Error) -> Error {
    if e.status != crate::Status::BadRequest {
        return e;
    }
    let why = match e.message.strip_prefix("body") {
        Some(rest) => rest.trim_start_matches(':').trim_start(),
        None => &e.message,
    };
    Error::bad_request(format!("key: {why}"))
}

/// Kafka's own rule for topic names: 1–249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic(topic: &str) -> Result<()> {
    let legal = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if legal {
        Ok(())
    } else {
        Err(Error::bad_request(
            "topic: must be 1 to 249 characters of letters, digits, '.', '_' or '-', and not '.' or '..'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_checks_and_encodes_but_never_produces() {
        let (publisher, dir) = dry_run_publisher("dry-run", "{}");
        std::fs::write(dir.join("T.proto"), "syntax = \"proto3\"; message M { string s = 1; }").unwrap();
        let record = |json| Record { topic: "T", json, headers: &[], key: None };
        assert_eq!(publisher.publish(&record(r#"{"s":"x"}"#)).unwrap(), Delivery::DRY_RUN);
        let e = publisher.publish(&record(r#"{"s":1}"#)).unwrap_err();
        assert_eq!(e.status, crate::Status::BadRequest);
        // Started: valid records complete at once, invalid ones are refused at the start.
        publisher.start(&record(r#"{"s":"y"}"#), Placement::default(), 7).unwrap();
        assert_eq!(
            publisher.start(&record(r#"{"s":2}"#), Placement::default(), 8).unwrap_err().status,
            crate::Status::BadRequest
        );
        let negative = Placement { partition: Some(-2), timestamp_ms: None };
        assert_eq!(
            publisher.start(&record(r#"{"s":"y"}"#), negative, 9).unwrap_err().status,
            crate::Status::BadRequest
        );
        let mut done = Vec::new();
        assert_eq!(publisher.completions(&mut done, 8, Duration::from_millis(100)), 1);
        // The completion names the schema's format, though the record named none.
        let formats = Formats { value: crate::completion::FORMAT_PROTOBUF, key: 0, key_len: 0 };
        assert_eq!(done, [Completion { token: 7, outcome: Ok(Delivery::DRY_RUN), value_len: 0, formats }]);
        publisher.flush(Duration::from_millis(1)).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A dry-run publisher over a fresh, empty schema directory. Its broker, port 9 (discard), never
    /// answers Kafka: a produce attempt would time out, not succeed.
    fn dry_run_publisher(name: &str, schema: &str) -> (Publisher, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"file","directory":{:?}}},"schema":{schema},"dry_run":true}}"#,
            dir.display().to_string()
        );
        (Publisher::new(&config).unwrap(), dir)
    }

    #[test]
    fn schema_not_found_is_remembered_for_its_ttl() {
        let record = Record { topic: "Late", json: r#"{"s":"x"}"#, headers: &[], key: None };
        let proto = "syntax = \"proto3\"; message M { string s = 1; }";
        // Remembered for a minute: the file appearing does not help until then.
        let (remembering, remembering_dir) = dry_run_publisher("miss-remembered", r#"{"not_found_ttl_ms":60000}"#);
        assert_eq!(remembering.publish(&record).unwrap_err().status, crate::Status::NotFound);
        std::fs::write(remembering_dir.join("Late.proto"), proto).unwrap();
        let e = remembering.publish(&record).unwrap_err();
        assert_eq!(e.status, crate::Status::NotFound, "{}", e.message);
        // Never remembered: found as soon as it exists.
        let (asking, asking_dir) = dry_run_publisher("miss-forgotten", r#"{"not_found_ttl_ms":0}"#);
        assert_eq!(asking.publish(&record).unwrap_err().status, crate::Status::NotFound);
        std::fs::write(asking_dir.join("Late.proto"), proto).unwrap();
        assert_eq!(asking.publish(&record).unwrap(), Delivery::DRY_RUN);
        // Remembered briefly: found once the time is up.
        let (brief, brief_dir) = dry_run_publisher("miss-brief", r#"{"not_found_ttl_ms":200}"#);
        assert_eq!(brief.publish(&record).unwrap_err().status, crate::Status::NotFound);
        std::fs::write(brief_dir.join("Late.proto"), proto).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(brief.publish(&record).unwrap(), Delivery::DRY_RUN);
        for dir in [remembering_dir, asking_dir, brief_dir] {
            std::fs::remove_dir_all(dir).ok();
        }
    }

    #[test]
    fn keys_are_encoded_with_their_own_schema_when_configured() {
        let (publisher, dir) = dry_run_publisher("key-schema", "{}");
        std::fs::write(dir.join("K.proto"), "syntax = \"proto3\"; message V { string s = 1; }").unwrap();
        std::fs::write(
            dir.join("K-key.avsc"),
            r#"{"type":"record","name":"Key","fields":[{"name":"id","type":"long"}]}"#,
        )
        .unwrap();
        let record = |key: Option<&'static [u8]>| Record { topic: "K", json: r#"{"s":"x"}"#, headers: &[], key };
        // Without key_schema the key is the caller's bytes, JSON or not.
        let (_, key) = publisher.encode_with_key(&record(Some(br#"{"id": 7}"#))).unwrap();
        assert_eq!(key.as_deref(), Some(&br#"{"id": 7}"#[..]));
        assert_eq!(publisher.encode_with_key(&record(None)).unwrap().1, None);
        drop(publisher);
        // With it the key is JSON, encoded by `<topic>-key` (Avro: id 7 is the zigzag varint 14).
        let config = format!(
            r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"file","directory":{:?}}},"key_schema":{{}},"dry_run":true}}"#,
            dir.display().to_string()
        );
        let publisher = Publisher::new(&config).unwrap();
        let (value, key) = publisher.encode_with_key(&record(Some(br#" {"id": 7} "#))).unwrap();
        assert_eq!((value, key), (vec![0x0a, 1, b'x'], Some(vec![14])));
        assert_eq!(publisher.publish(&record(Some(br#"{"id":7}"#))).unwrap(), Delivery::DRY_RUN);
        for (key, status, message) in [
            (Some(&b"order-17"[..]), 400, "key: expected value"),
            (Some(br#"{"id":true}"#), 400, "key: field `id`: invalid type: boolean"),
            (Some(br#"{"id":7,"x":1}"#), 400, "key: unrecognized field name 'x'"),
            (Some(b"\xff"), 400, "key: not valid UTF-8 (at byte 0)"),
            (None, 400, "key: missing; "),
        ] {
            let e = publisher.publish(&record(key)).expect_err(&format!("{key:?}"));
            assert_eq!((e.status.code(), e.message.starts_with(message)), (status, true), "{key:?}: {}", e.message);
        }
        // A batch looks up both schemas once; every record's key is encoded.
        let mut batch = crate::Batch::new("K").unwrap();
        batch.add(&publisher, r#"{"s":"a"}"#, &[], Some(br#"{"id":1}"#), Placement::default()).unwrap();
        let e = batch.add(&publisher, r#"{"s":"b"}"#, &[], Some(br#"{"id":true}"#), Placement::default()).unwrap_err();
        assert!(e.message.starts_with("key: field `id`"), "{}", e.message);
        assert_eq!(batch.len(), 1);
        // A topic without a key schema: 404 naming it, as a value's missing schema.
        std::fs::write(dir.join("L.proto"), "syntax = \"proto3\"; message V { string s = 1; }").unwrap();
        let e = publisher.publish(&Record { topic: "L", json: "{}", headers: &[], key: Some(b"1") }).unwrap_err();
        assert_eq!(e.status, crate::Status::NotFound, "{}", e.message);
        assert!(e.message.contains("L-key"), "{}", e.message);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_cached_key_schema_is_served_stale_when_its_refresh_fails() {
        let (_, dir) = dry_run_publisher("key-stale", "{}");
        std::fs::write(dir.join("S.proto"), "syntax = \"proto3\"; message V { string s = 1; }").unwrap();
        std::fs::write(dir.join("S-key.json"), r#"{"type":"integer"}"#).unwrap();
        let config = format!(
            r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9"}},"registry":{{"kind":"file","directory":{:?}}},
                "schema":{{"refresh_interval_ms":1}},"key_schema":{{}},"dry_run":true}}"#,
            dir.display().to_string()
        );
        let publisher = Publisher::new(&config).unwrap();
        let record = Record { topic: "S", json: "{}", headers: &[], key: Some(b"5") };
        assert_eq!(publisher.encode_with_key(&record).unwrap().1, Some(b"5".to_vec()));
        // The key schema goes away: its background refresh fails, and the cached one is kept.
        std::fs::remove_file(dir.join("S-key.json")).unwrap();
        // The file registry's failures of any format (a removed file has none to name).
        let failures = || {
            use crate::metrics::{schema_counters, FormatLabel, RegistryKind};
            [FormatLabel::Protobuf, FormatLabel::Avro, FormatLabel::Json, FormatLabel::Unknown]
                .into_iter()
                .map(|f| {
                    schema_counters(RegistryKind::File, f).fetch_failures.load(std::sync::atomic::Ordering::Relaxed)
                })
                .sum::<u64>()
        };
        let before = failures();
        for _ in 0..200 {
            if failures() > before {
                break;
            }
            assert_eq!(publisher.encode_with_key(&record).unwrap().1, Some(b"5".to_vec()));
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(failures() > before, "the key schema's refresh never ran");
        assert_eq!(publisher.encode_with_key(&record).unwrap().1, Some(b"5".to_vec()));
        let e = publisher.encode_with_key(&Record { key: Some(b"x"), ..record }).unwrap_err();
        assert!(e.message.starts_with("key: "), "{}", e.message);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn kafka_topic_rule() {
        for ok in ["MyTopic", "a", "a.b_c-D9", &"x".repeat(249)] {
            check_topic(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "a%2Fb", &"x".repeat(250), "a\0"] {
            assert_eq!(check_topic(bad).unwrap_err().status, crate::Status::BadRequest, "{bad:?}");
        }
    }
}
