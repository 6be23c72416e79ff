//! The publisher's JSON configuration: parsed strictly, validated whole, errors name the key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::security::Secret;

/// Everything one publisher needs; the same document the KrakenD plugin passes through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Kafka cluster and producer settings.
    pub kafka: KafkaConfig,
    /// Where schemas come from.
    pub registry: RegistryConfig,
    /// How a topic maps to a schema and how strictly bodies are checked.
    #[serde(default)]
    pub schema: SchemaConfig,
    /// Encodes record keys with a schema of their own, framed like the value; absent (the
    /// default): the key is the plain bytes the caller gives.
    #[serde(default)]
    pub key_schema: Option<KeySchemaConfig>,
    /// Framing of the record value (and of a key encoded with `key_schema`).
    #[serde(default)]
    pub value_format: ValueFormat,
    /// Compression of the Glue-framed value (only with `value_format: "glue"`).
    #[serde(default)]
    pub glue_compression: GlueCompression,
    /// Size limits checked before anything is encoded or sent.
    #[serde(default)]
    pub limits: Limits,
    /// How long `publish` waits for the broker's acknowledgement (librdkafka `message.timeout.ms`).
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Check and encode every record but never produce it; answers carry partition and offset -1.
    /// For validate-only endpoints and for measuring the gateway without Kafka.
    #[serde(default)]
    pub dry_run: bool,
    /// Kafka transactions for all-or-nothing batches (`tg_batch_commit`).
    #[serde(default)]
    pub transactions: TransactionsConfig,
    /// Idempotency-Key state shared by all gateway replicas through a Kafka topic (the
    /// `IntentLog`); absent (the default): each replica remembers its own keys in memory.
    #[serde(default)]
    pub idempotency: Option<IdempotencyConfig>,
}

/// The shared idempotency log: a Kafka topic of intents and answers per key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// The log's topic; created at start when missing (delete retention of `window_ms`, the
    /// cluster's default partition count and replication factor).
    pub topic: String,
    /// How far back a replica reads the log at start, and how long it keeps a key's records.
    #[serde(default = "default_idempotency_window_ms")]
    pub window_ms: u64,
}

fn default_idempotency_window_ms() -> u64 {
    86_400_000
}

/// The transactional producers of all-or-nothing batches. Each has the transactional id
/// `<id_prefix>-<replica_id>-<tag>-<n>`, n = 0..producers, where `tag` names the publisher's Kafka
/// settings (crate::transaction): stable across restarts of one replica with unchanged settings (a
/// restarted replica fences its own previous instance and aborts what it left open), distinct
/// across replicas and across the differently configured publishers of one process (they never
/// fence each other). Created on the first all-or-nothing batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionsConfig {
    /// First part of every transactional id; give each gateway fleet its own.
    #[serde(default = "default_transactional_id_prefix")]
    pub id_prefix: String,
    /// Names this replica; empty means the `HOSTNAME` environment variable, else the host name
    /// (stable per pod in a Kubernetes StatefulSet, unique per container elsewhere).
    #[serde(default)]
    pub replica_id: String,
    /// Transactions that can be open at once (one per transactional producer).
    #[serde(default = "default_transactional_producers")]
    pub producers: usize,
    /// Deadline for starting, committing or aborting a transaction, in milliseconds.
    #[serde(default = "default_transaction_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            id_prefix: default_transactional_id_prefix(),
            replica_id: String::new(),
            producers: default_transactional_producers(),
            timeout_ms: default_transaction_timeout_ms(),
        }
    }
}

fn default_transactional_id_prefix() -> String {
    "topicgate".to_owned()
}
fn default_transactional_producers() -> usize {
    2
}
fn default_transaction_timeout_ms() -> u64 {
    10_000
}

/// The Kafka cluster: one shared producer exists per distinct value of this section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// TLS to the brokers; absent means plaintext.
    #[serde(default)]
    pub tls: Option<crate::security::TlsConfig>,
    /// SASL authentication; absent means none.
    #[serde(default)]
    pub auth: Option<crate::security::AuthConfig>,
    /// Any librdkafka producer property; strings, numbers and booleans are accepted.
    #[serde(default, deserialize_with = "property_map")]
    pub properties: BTreeMap<String, String>,
}

/// The schema registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RegistryConfig {
    /// AWS Glue Schema Registry.
    Glue {
        /// The registry's name.
        registry_name: String,
        /// AWS region; the standard AWS chain decides when absent.
        #[serde(default)]
        region: Option<String>,
        /// Endpoint override (tests, VPC endpoints); `AWS_ENDPOINT_URL_GLUE` is honoured too.
        #[serde(default)]
        endpoint_url: Option<String>,
        /// Deadline for one registry call, in milliseconds.
        #[serde(default = "default_registry_timeout_ms")]
        timeout_ms: u64,
    },
    /// A directory of `<schema name>.proto` files.
    File {
        /// The directory; also the import root.
        directory: PathBuf,
    },
    /// A Confluent-compatible Schema Registry (Confluent, Apicurio's `ccompat` API, Karapace, Redpanda).
    Confluent {
        /// The API root, e.g. `https://sr.example:8081` or `http://apicurio:8080/apis/ccompat/v7`.
        url: String,
        /// How a topic's subject is named.
        #[serde(default)]
        subject_name_strategy: SubjectNameStrategy,
        /// The record (Avro full name, Protobuf message or JSON Schema title) the record strategies name.
        #[serde(default)]
        record_name: Option<String>,
        /// HTTP basic authentication.
        #[serde(default)]
        basic_auth: Option<BasicAuth>,
        /// `Authorization: Bearer` token.
        #[serde(default)]
        bearer_token: Option<Secret>,
        /// A PEM CA bundle trusted besides the system's roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Deadline for one lookup (the subject version and its references), in milliseconds.
        #[serde(default = "default_registry_timeout_ms")]
        timeout_ms: u64,
    },
}

/// Confluent's subject name strategies for record values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectNameStrategy {
    /// `TopicNameStrategy`: `<topic>-value`.
    #[default]
    Topic,
    /// `RecordNameStrategy`: `<record_name>`.
    Record,
    /// `TopicRecordNameStrategy`: `<topic>-<record_name>`.
    TopicRecord,
}

/// A Schema Registry's basic-auth credentials (Confluent Cloud: API key and secret).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Which schema (and which message in it) a topic uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// Schema name for a topic; `{topic}` is replaced by the topic name.
    #[serde(default = "default_name_template")]
    pub name_template: String,
    /// `"latest"` or a pinned version number.
    #[serde(default)]
    pub version: SchemaVersion,
    /// `"first"` (first top-level message of the file) or a message's full name.
    #[serde(default)]
    pub message_type: MessageType,
    /// Accept and drop JSON fields the schema does not know (default: reject them).
    #[serde(default)]
    pub allow_unknown_fields: bool,
    /// How old a cached `latest` schema may get before it is refreshed in the background.
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
    /// How long a "schema not found" answer is remembered before the registry is asked again
    /// (0: ask every time). Keeps requests for missing schemas from hammering the registry.
    #[serde(default = "default_not_found_ttl_ms")]
    pub not_found_ttl_ms: u64,
}

/// Which schema a topic's record keys use. With it the key a caller gives is JSON text, checked
/// and encoded like a body; the value's `schema` settings for unknown fields, refresh and
/// remembered misses apply to it too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySchemaConfig {
    /// Schema name of a topic's keys (file and Glue registries); `{topic}` is replaced by the topic.
    #[serde(default = "default_key_name_template")]
    pub name_template: String,
    /// The key's record (Avro full name, Protobuf message or JSON Schema title) that a Confluent
    /// registry's record strategies name; required by them.
    #[serde(default)]
    pub record_name: Option<String>,
    /// `"latest"` or a pinned version number.
    #[serde(default)]
    pub version: SchemaVersion,
    /// `"first"` or a Protobuf message's full name.
    #[serde(default)]
    pub message_type: MessageType,
}

/// A schema version selector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// The newest version, refreshed in the background.
    #[default]
    Latest,
    /// A fixed version number (1-based).
    Number(i64),
}

/// Which message of the schema file a body is parsed into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// The first top-level message declared in the file.
    #[default]
    First,
    /// A message by its full name, e.g. `events.v1.MyTopic`.
    Named(String),
}

/// Framing of the record value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// Plain Protobuf bytes.
    #[default]
    Raw,
    /// AWS Glue SerDe framing (header, schema version UUID, message index).
    Glue,
    /// Confluent's wire format: magic byte 0, the 4-byte schema id, for Protobuf the message-index
    /// path, then the encoded bytes.
    Confluent,
}

/// Compression of a Glue-framed value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlueCompression {
    /// Byte `0x00`.
    #[default]
    None,
    /// Byte `0x05`, zlib stream.
    Zlib,
}

/// Size limits, checked before any work is done.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest JSON body accepted, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Largest record key, in bytes.
    #[serde(default = "default_max_key_bytes")]
    pub max_key_bytes: usize,
    /// Most record headers per record.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Largest sum of header name and value lengths, in bytes.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
}

fn default_delivery_timeout_ms() -> u64 {
    5_000
}
fn default_registry_timeout_ms() -> u64 {
    5_000
}
fn default_name_template() -> String {
    "{topic}".to_owned()
}
fn default_key_name_template() -> String {
    "{topic}-key".to_owned()
}
fn default_refresh_interval_ms() -> u64 {
    300_000
}
fn default_not_found_ttl_ms() -> u64 {
    10_000
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
fn default_max_key_bytes() -> usize {
    4096
}
fn default_max_headers() -> usize {
    64
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}

impl Default for SchemaConfig {
    fn default() -> Self {
        SchemaConfig {
            name_template: default_name_template(),
            version: SchemaVersion::default(),
            message_type: MessageType::default(),
            allow_unknown_fields: false,
            refresh_interval_ms: default_refresh_interval_ms(),
            not_found_ttl_ms: default_not_found_ttl_ms(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: default_max_message_bytes(),
            max_key_bytes: default_max_key_bytes(),
            max_headers: default_max_headers(),
            max_header_bytes: default_max_header_bytes(),
        }
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "latest" => Ok(SchemaVersion::Latest),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(v) if v >= 1 => Ok(SchemaVersion::Number(v)),
                _ => Err(de::Error::custom("must be \"latest\" or a version number >= 1")),
            },
            _ => Err(de::Error::custom("must be \"latest\" or a version number >= 1")),
        }
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "first" => Ok(MessageType::First),
            "" => Err(de::Error::custom("must be \"first\" or a message's full name")),
            _ => Ok(MessageType::Named(s.trim_start_matches('.').to_owned())),
        }
    }
}

/// librdkafka takes every property as a string; accept JSON scalars and stringify them.
fn property_map<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(de::Error::custom(format!("property `{k}` must be a string, number or boolean"))),
            };
            Ok((k, s))
        })
        .collect()
}

/// Properties topicgate sets itself from other keys; setting them twice would be ambiguous.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "kafka.bootstrap_servers"),
    ("message.timeout.ms", "delivery_timeout_ms"),
    ("delivery.timeout.ms", "delivery_timeout_ms"),
    ("transactional.id", "transactions.id_prefix"),
];

impl TransactionsConfig {
    /// The transactional ids of this replica's producers, `<id_prefix>-<replica>-<tag>-<n>`;
    /// `tag` tells apart the publishers of one replica (crate::transaction derives it).
    pub fn transactional_ids(&self, tag: &str) -> Result<Vec<String>> {
        let replica = match self.replica_id.trim() {
            "" => std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.trim().is_empty())
                .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::bad_request("config: transactions.replica_id: not set and no host name found"))?,
            id => id.to_owned(),
        };
        Ok((0..self.producers).map(|n| format!("{}-{replica}-{tag}-{n}", self.id_prefix)).collect())
    }
}

impl Config {
    /// Parses and validates a config document; the error names the offending key.
    pub fn from_json(text: &str) -> Result<Config> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                Error::bad_request(format!("config: {inner}"))
            } else {
                Error::bad_request(format!("config: {path}: {inner}"))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::bad_request(format!("config: {key}: {why}")));
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return bad("kafka.bootstrap_servers", "must not be empty");
        }
        for (prop, owner) in OWNED_PROPERTIES {
            if self.kafka.properties.contains_key(*prop) {
                return bad(&format!("kafka.properties.{prop}"), &format!("set it with `{owner}` instead"));
            }
        }
        crate::security::validate(self.kafka.tls.as_ref(), self.kafka.auth.as_ref(), &self.kafka.properties)?;
        match &self.registry {
            RegistryConfig::Glue { registry_name, timeout_ms, .. } => {
                if registry_name.trim().is_empty() {
                    return bad("registry.registry_name", "must not be empty");
                }
                if *timeout_ms == 0 {
                    return bad("registry.timeout_ms", "must be > 0");
                }
            }
            RegistryConfig::Confluent {
                url,
                subject_name_strategy,
                record_name,
                basic_auth,
                bearer_token,
                timeout_ms,
                ..
            } => {
                if url.trim().is_empty() {
                    return bad("registry.url", "must not be empty");
                }
                if *timeout_ms == 0 {
                    return bad("registry.timeout_ms", "must be > 0");
                }
                if basic_auth.is_some() && bearer_token.is_some() {
                    return bad("registry.bearer_token", "give basic_auth or bearer_token, not both");
                }
                match (subject_name_strategy, record_name.as_deref().map(str::trim)) {
                    (SubjectNameStrategy::Topic, Some(_)) => {
                        return bad("registry.record_name", "only the record strategies name a record");
                    }
                    (SubjectNameStrategy::Record | SubjectNameStrategy::TopicRecord, None | Some("")) => {
                        return bad(
                            "registry.record_name",
                            "is required by subject_name_strategy \"record\" and \"topic_record\"",
                        );
                    }
                    _ => {}
                }
                if self.schema.name_template != default_name_template() {
                    return bad(
                        "schema.name_template",
                        "a Confluent registry names subjects by registry.subject_name_strategy",
                    );
                }
            }
            RegistryConfig::File { directory } => {
                if !directory.is_dir() {
                    return bad("registry.directory", "is not a readable directory");
                }
                if self.schema.version != SchemaVersion::Latest {
                    return bad("schema.version", "a file registry has no versions; use \"latest\"");
                }
                if self.value_format == ValueFormat::Glue {
                    return bad(
                        "value_format",
                        "\"glue\" needs a schema version id, so registry.kind must be \"glue\"",
                    );
                }
            }
        }
        if self.value_format == ValueFormat::Confluent && !matches!(self.registry, RegistryConfig::Confluent { .. }) {
            return bad(
                "value_format",
                "\"confluent\" needs a Confluent schema id, so registry.kind must be \"confluent\"",
            );
        }
        if self.value_format == ValueFormat::Glue && matches!(self.registry, RegistryConfig::Confluent { .. }) {
            return bad(
                "value_format",
                "\"glue\" needs a Glue schema version id; with a Confluent registry use \"confluent\"",
            );
        }
        if !self.schema.name_template.contains("{topic}") {
            return bad("schema.name_template", "must contain {topic}");
        }
        if self.value_format != ValueFormat::Glue && self.glue_compression != GlueCompression::None {
            return bad("glue_compression", "only applies to value_format \"glue\"");
        }
        if self.delivery_timeout_ms == 0 || self.delivery_timeout_ms > i32::MAX as u64 {
            return bad("delivery_timeout_ms", "must be between 1 and 2147483647");
        }
        if self.schema.refresh_interval_ms == 0 {
            return bad("schema.refresh_interval_ms", "must be > 0");
        }
        if let Some(key) = &self.key_schema {
            self.validate_key_schema(key)?;
        }
        let t = &self.transactions;
        if t.id_prefix.trim().is_empty() {
            return bad("transactions.id_prefix", "must not be empty");
        }
        if t.producers == 0 || t.producers > 64 {
            return bad("transactions.producers", "must be between 1 and 64");
        }
        if let Some(idem) = &self.idempotency {
            let t = &idem.topic;
            if t.is_empty()
                || t.len() > 249
                || t == "."
                || t == ".."
                || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return bad("idempotency.topic", "must be a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)");
            }
            if idem.window_ms < 1000 {
                return bad("idempotency.window_ms", "must be at least 1000");
            }
        }
        if t.timeout_ms == 0 || t.timeout_ms > i32::MAX as u64 {
            return bad("transactions.timeout_ms", "must be between 1 and 2147483647");
        }
        let l = &self.limits;
        for (key, v) in [
            ("limits.max_message_bytes", l.max_message_bytes),
            ("limits.max_key_bytes", l.max_key_bytes),
            ("limits.max_header_bytes", l.max_header_bytes),
        ] {
            if v == 0 {
                return bad(key, "must be > 0");
            }
        }
        Ok(())
    }

    fn validate_key_schema(&self, key: &KeySchemaConfig) -> Result<()> {
        let bad = |k: &str, why: &str| Err(Error::bad_request(format!("config: key_schema.{k}: {why}")));
        let record_name = key.record_name.as_deref().map(str::trim);
        match &self.registry {
            RegistryConfig::Confluent { subject_name_strategy, .. } => {
                if key.name_template != default_key_name_template() {
                    return bad(
                        "name_template",
                        "a Confluent registry names subjects by registry.subject_name_strategy",
                    );
                }
                match (subject_name_strategy, record_name) {
                    (SubjectNameStrategy::Topic, Some(_)) => {
                        return bad(
                            "record_name",
                            "only the record strategies name a record (the subject is <topic>-key)",
                        );
                    }
                    (SubjectNameStrategy::Record | SubjectNameStrategy::TopicRecord, None | Some("")) => {
                        return bad(
                            "record_name",
                            "is required by subject_name_strategy \"record\" and \"topic_record\" (the key's record)",
                        );
                    }
                    _ => {}
                }
            }
            RegistryConfig::File { .. } | RegistryConfig::Glue { .. } => {
                if record_name.is_some() {
                    return bad("record_name", "only a Confluent registry's record strategies name a record");
                }
                if !key.name_template.contains("{topic}") {
                    return bad("name_template", "must contain {topic}");
                }
            }
        }
        if matches!(self.registry, RegistryConfig::File { .. }) && key.version != SchemaVersion::Latest {
            return bad("version", "a file registry has no versions; use \"latest\"");
        }
        Ok(())
    }

    /// The key schema's name for a topic, when keys are encoded with a schema: from
    /// `key_schema.name_template`, or for a Confluent registry the subject its strategy names for
    /// keys (`<topic>-key`, `<record_name>`, `<topic>-<record_name>`, as Confluent's serializers).
    pub fn key_schema_name(&self, topic: &str) -> Option<String> {
        let key = self.key_schema.as_ref()?;
        Some(match &self.registry {
            RegistryConfig::Confluent { subject_name_strategy, .. } => {
                let record = key.record_name.as_deref().unwrap_or_default();
                match subject_name_strategy {
                    SubjectNameStrategy::Topic => format!("{topic}-key"),
                    SubjectNameStrategy::Record => record.to_owned(),
                    SubjectNameStrategy::TopicRecord => format!("{topic}-{record}"),
                }
            }
            _ => key.name_template.replace("{topic}", topic),
        })
    }

    /// The schema name for a topic: from `schema.name_template`, or for a Confluent registry the
    /// subject its strategy names.
    pub fn schema_name(&self, topic: &str) -> String {
        match &self.registry {
            RegistryConfig::Confluent { subject_name_strategy, record_name, .. } => {
                let record = record_name.as_deref().unwrap_or_default();
                match subject_name_strategy {
                    SubjectNameStrategy::Topic => format!("{topic}-value"),
                    SubjectNameStrategy::Record => record.to_owned(),
                    SubjectNameStrategy::TopicRecord => format!("{topic}-{record}"),
                }
            }
            _ => self.schema.name_template.replace("{topic}", topic),
        }
    }

    /// The delivery deadline.
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    /// The complete librdkafka property set: no-loss defaults, the user's properties, then
    /// security settings (secrets as written: the core expands no `${VAR}`).
    pub fn producer_properties(&self) -> Result<BTreeMap<String, String>> {
        let mut props = BTreeMap::new();
        props.insert("acks".to_owned(), "all".to_owned());
        props.insert("enable.idempotence".to_owned(), "true".to_owned());
        // Each caller waits for its own record, so librdkafka's 5 ms default linger would be added to
        // every request. 0 sends records one by one: under load the gateway then spends 10–25% and
        // the broker 2.5× the CPU per record (bench/README.md). 1 ms batches them for ≤1 ms more.
        props.insert("linger.ms".to_owned(), "1".to_owned());
        // Queue depth and broker connections for metrics and readiness (crate::metrics) come from
        // librdkafka's statistics; once a second costs it one small JSON document.
        props.insert("statistics.interval.ms".to_owned(), "1000".to_owned());
        props.extend(self.kafka.properties.clone());
        props.insert("bootstrap.servers".to_owned(), self.kafka.bootstrap_servers.clone());
        props.insert("message.timeout.ms".to_owned(), self.delivery_timeout_ms.to_string());
        crate::security::add_properties(self.kafka.tls.as_ref(), self.kafka.auth.as_ref(), &mut props)?;
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> String {
        std::env::temp_dir().display().to_string()
    }

    fn minimal() -> String {
        format!(
            r#"{{"kafka":{{"bootstrap_servers":"127.0.0.1:9092"}},"registry":{{"kind":"file","directory":"{}"}}}}"#,
            dir()
        )
    }

    fn err(text: &str) -> String {
        Config::from_json(text).unwrap_err().message
    }

    #[test]
    fn idempotency_log_is_off_by_default_and_checked_when_set() {
        assert!(Config::from_json(&minimal()).unwrap().idempotency.is_none());
        let with = |idem: &str| minimal().replacen('{', &format!("{{\"idempotency\":{idem},"), 1);
        let c = Config::from_json(&with(r#"{"topic":"tg-idem"}"#)).unwrap();
        let idem = c.idempotency.unwrap();
        assert_eq!((idem.topic.as_str(), idem.window_ms), ("tg-idem", 86_400_000));
        assert!(err(&with(r#"{"topic":"a b"}"#)).contains("idempotency.topic"));
        assert!(err(&with(r#"{"topic":""}"#)).contains("idempotency.topic"));
        assert!(err(&with(r#"{"topic":"t","window_ms":10}"#)).contains("idempotency.window_ms"));
        assert!(err(&with(r#"{"window_ms":1000}"#)).contains("topic"));
    }

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let c = Config::from_json(&minimal()).unwrap();
        assert_eq!(c.schema.name_template, "{topic}");
        assert_eq!(c.schema.version, SchemaVersion::Latest);
        assert_eq!(c.schema.message_type, MessageType::First);
        assert!(!c.schema.allow_unknown_fields);
        assert_eq!(c.value_format, ValueFormat::Raw);
        assert_eq!(c.delivery_timeout_ms, 5000);
        let p = c.producer_properties().unwrap();
        assert_eq!(p["acks"], "all");
        assert_eq!(p["enable.idempotence"], "true");
        assert_eq!(p["message.timeout.ms"], "5000");
        assert_eq!(p["linger.ms"], "1");
        assert_eq!(p["bootstrap.servers"], "127.0.0.1:9092");
    }

    #[test]
    fn user_properties_override_defaults_and_are_stringified() {
        let text = r#"{"kafka":{"bootstrap_servers":"b:1","properties":{"acks":1,"enable.idempotence":false,"linger.ms":"5"}},
            "registry":{"kind":"glue","registry_name":"r","region":"eu-west-1"},"schema":{"version":3,"message_type":"a.B"}}"#;
        let c = Config::from_json(text).unwrap();
        let p = c.producer_properties().unwrap();
        assert_eq!(p["acks"], "1");
        assert_eq!(p["enable.idempotence"], "false");
        assert_eq!(p["linger.ms"], "5");
        assert_eq!(c.schema.version, SchemaVersion::Number(3));
        assert_eq!(c.schema.message_type, MessageType::Named("a.B".into()));
        assert_eq!(c.schema_name("T"), "T");
    }

    #[test]
    fn unknown_key_is_named() {
        let text = minimal().replace(r#""kafka":{"#, r#""kafka":{"bootstrap":"x","#);
        let m = err(&text);
        assert!(m.contains("kafka") && m.contains("unknown field `bootstrap`"), "{m}");
    }

    #[test]
    fn nested_bad_values_are_named_by_path() {
        let m = err(&minimal().replace(r#""kind":"file""#, r#""kind":"consul""#));
        assert!(m.contains("registry") && m.contains("consul"), "{m}");
        let m = err(&format!(
            r#"{{"kafka":{{"bootstrap_servers":"b:1"}},"registry":{{"kind":"file","directory":"{}"}},"schema":{{"version":"newest"}}}}"#,
            dir()
        ));
        assert!(m.contains("schema.version"), "{m}");
        let m = err(&minimal().replacen(
            r#""bootstrap_servers":"127.0.0.1:9092""#,
            r#""bootstrap_servers":"127.0.0.1:9092","properties":{"x":[1]}"#,
            1,
        ));
        assert!(m.contains("kafka.properties") && m.contains("`x`"), "{m}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let m = err(r#"{"kafka":{"bootstrap_servers":" "},"registry":{"kind":"file","directory":"/"}}"#);
        assert!(m.contains("kafka.bootstrap_servers"), "{m}");
        let m =
            err(r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"file","directory":"/nonexistent/dir"}}"#);
        assert!(m.contains("registry.directory"), "{m}");
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1","properties":{"bootstrap.servers":"x"}},"registry":{"kind":"file","directory":"/"}}"#,
        );
        assert!(m.contains("kafka.properties.bootstrap.servers"), "{m}");
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"file","directory":"/"},"value_format":"glue"}"#,
        );
        assert!(m.contains("value_format"), "{m}");
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"glue","registry_name":"r"},"schema":{"name_template":"fixed"}}"#,
        );
        assert!(m.contains("schema.name_template"), "{m}");
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"glue","registry_name":"r"},"delivery_timeout_ms":0}"#,
        );
        assert!(m.contains("delivery_timeout_ms"), "{m}");
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"glue","registry_name":"r"},"glue_compression":"zlib"}"#,
        );
        assert!(m.contains("glue_compression"), "{m}");
    }

    #[test]
    fn confluent_registries_name_subjects_by_strategy() {
        let cfg = |registry: &str, extra: &str| {
            Config::from_json(&format!(
                r#"{{"kafka":{{"bootstrap_servers":"b:1"}},"registry":{{"kind":"confluent","url":"http://r:8081"{registry}}}{extra}}}"#
            ))
        };
        assert_eq!(cfg("", "").unwrap().schema_name("orders"), "orders-value");
        let c = cfg(r#","subject_name_strategy":"topic_record","record_name":"shop.Order""#, "").unwrap();
        assert_eq!(c.schema_name("orders"), "orders-shop.Order");
        let c = cfg(r#","subject_name_strategy":"record","record_name":"shop.Order""#, "").unwrap();
        assert_eq!(c.schema_name("orders"), "shop.Order");
        for (registry, extra, key) in [
            (r#","subject_name_strategy":"record""#, "", "registry.record_name"),
            (r#","record_name":"shop.Order""#, "", "registry.record_name"),
            (r#","basic_auth":{"username":"u","password":"p"},"bearer_token":"t""#, "", "registry.bearer_token"),
            ("", r#","value_format":"glue""#, "value_format"),
            ("", r#","schema":{"name_template":"{topic}-v"}"#, "schema.name_template"),
            (r#","timeout_ms":0"#, "", "registry.timeout_ms"),
        ] {
            let m = cfg(registry, extra).unwrap_err().message;
            assert!(m.contains(key), "{registry} {extra}: {m}");
        }
        let m = err(
            r#"{"kafka":{"bootstrap_servers":"b:1"},"registry":{"kind":"file","directory":"/"},"value_format":"confluent"}"#,
        );
        assert!(m.contains("value_format") && m.contains("confluent"), "{m}");
        // The password never shows in what the config prints.
        let c = cfg(r#","basic_auth":{"username":"u","password":"hunter2"}"#, "").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn key_schemas_are_named_per_registry_and_checked() {
        let confluent = |registry: &str, key: &str| {
            Config::from_json(&format!(
                r#"{{"kafka":{{"bootstrap_servers":"b:1"}},"registry":{{"kind":"confluent","url":"http://r:8081"{registry}}},"key_schema":{key}}}"#
            ))
        };
        // Off by default: keys stay plain bytes.
        assert_eq!(Config::from_json(&minimal()).unwrap().key_schema_name("orders"), None);
        assert_eq!(confluent("", "{}").unwrap().key_schema_name("orders").as_deref(), Some("orders-key"));
        assert_eq!(confluent("", "null").unwrap().key_schema_name("orders"), None);
        let c = confluent(
            r#","subject_name_strategy":"record","record_name":"shop.Order""#,
            r#"{"record_name":"shop.OrderKey"}"#,
        );
        assert_eq!(c.unwrap().key_schema_name("orders").as_deref(), Some("shop.OrderKey"));
        let c = confluent(
            r#","subject_name_strategy":"topic_record","record_name":"shop.Order""#,
            r#"{"record_name":"shop.K"}"#,
        );
        assert_eq!(c.unwrap().key_schema_name("orders").as_deref(), Some("orders-shop.K"));
        let file = Config::from_json(&minimal().replacen('}', r#"},"key_schema":{}"#, 1)).unwrap();
        assert_eq!(file.key_schema_name("orders").as_deref(), Some("orders-key"));
        for (registry, key, named) in [
            ("", r#"{"record_name":"K"}"#, "key_schema.record_name"),
            (r#","subject_name_strategy":"record","record_name":"V""#, "{}", "key_schema.record_name"),
            ("", r#"{"name_template":"{topic}-k"}"#, "key_schema.name_template"),
            ("", r#"{"version":0}"#, "key_schema.version"),
            ("", r#"{"extra":1}"#, "key_schema"),
        ] {
            let m = confluent(registry, key).unwrap_err().message;
            assert!(m.contains(named), "{registry} {key}: {m}");
        }
        let m = err(&minimal().replacen('}', r#"},"key_schema":{"name_template":"keys"}"#, 1));
        assert!(m.contains("key_schema.name_template"), "{m}");
        let m = err(&minimal().replacen('}', r#"},"key_schema":{"version":2}"#, 1));
        assert!(m.contains("key_schema.version"), "{m}");
    }

    #[test]
    fn missing_section_and_bad_json_are_reported() {
        assert!(err(r#"{"kafka":{"bootstrap_servers":"b:1"}}"#).contains("missing field `registry`"));
        assert!(err("{").starts_with("config:"));
        assert!(err("").starts_with("config:"));
    }
}
