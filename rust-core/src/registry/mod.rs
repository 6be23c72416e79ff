//! Schema registries: where the text of a topic's schema (Protobuf, Avro or JSON Schema) comes from.

pub mod confluent;
mod file;
mod glue;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::config::{RegistryConfig, SchemaVersion};
use crate::error::Result;
use crate::runtime;

/// How long a request waits for a file registry's read (a local file: it should take far less).
const FILE_READ_BOUND: Duration = Duration::from_secs(5);

/// The format of a schema, as its registry tells it (file extension, Glue's `DataFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// `.proto` text.
    Protobuf,
    /// An Avro schema (`.avsc`).
    Avro,
    /// A JSON Schema; `default_draft` applies when the schema has no `$schema`.
    JsonSchema {
        /// The draft of a schema without `$schema`.
        default_draft: jsonschema::Draft,
    },
}

impl SchemaFormat {
    /// The format as the metrics label it.
    pub fn label(self) -> crate::metrics::FormatLabel {
        match self {
            SchemaFormat::Protobuf => crate::metrics::FormatLabel::Protobuf,
            SchemaFormat::Avro => crate::metrics::FormatLabel::Avro,
            SchemaFormat::JsonSchema { .. } => crate::metrics::FormatLabel::Json,
        }
    }

    /// The format's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            SchemaFormat::Protobuf => "Protobuf",
            SchemaFormat::Avro => "Avro",
            SchemaFormat::JsonSchema { .. } => "JSON Schema",
        }
    }
}

/// One version of a schema as the registry holds it, before compilation.
#[derive(Debug, Clone)]
pub struct SchemaText {
    /// File name the text is compiled under (`<schema name>.proto`, `.avsc`, `.json`).
    pub file_name: String,
    /// The schema's source text.
    pub definition: String,
    /// Its format.
    pub format: SchemaFormat,
    /// Glue's schema version id (None for a file registry).
    pub version_id: Option<Uuid>,
    /// Glue's version number (None for a file registry).
    pub version_number: Option<i64>,
    /// Directory that imports are resolved against (file registry only).
    pub import_dir: Option<PathBuf>,
    /// A Confluent registry's global schema id: what Confluent's wire format carries.
    pub schema_id: Option<u32>,
    /// Schemas this one references, by reference name (a Protobuf import path, an Avro full
    /// name, a JSON Schema `$ref` URI): a Confluent registry's references, resolved.
    pub references: BTreeMap<String, String>,
}

/// A configured registry client.
#[derive(Debug)]
pub enum Registry {
    /// AWS Glue Schema Registry.
    Glue(glue::GlueRegistry),
    /// A local directory of `.proto`, `.avsc` and `.json` (JSON Schema) files.
    File(Arc<file::FileRegistry>),
    /// A Confluent-compatible Schema Registry.
    Confluent(confluent::ConfluentRegistry),
}

impl Registry {
    /// Builds the client; no request is made yet.
    pub fn new(config: &RegistryConfig) -> Result<Registry> {
        match config {
            RegistryConfig::Glue { registry_name, region, endpoint_url, timeout_ms } => Ok(Registry::Glue(
                glue::GlueRegistry::new(registry_name, region.as_deref(), endpoint_url.as_deref(), *timeout_ms)?,
            )),
            RegistryConfig::File { directory } => Ok(Registry::File(Arc::new(file::FileRegistry::new(directory)?))),
            RegistryConfig::Confluent { url, basic_auth, bearer_token, ca_file, timeout_ms, .. } => {
                let auth = match (basic_auth, bearer_token) {
                    (Some(b), _) => {
                        confluent::Auth::Basic { username: b.username.clone(), password: b.password.0.clone() }
                    }
                    (None, Some(token)) => confluent::Auth::Bearer(token.0.clone()),
                    (None, None) => confluent::Auth::None,
                };
                Ok(Registry::Confluent(confluent::ConfluentRegistry::new(url, auth, ca_file.as_ref(), *timeout_ms)?))
            }
        }
    }

    /// Fetches one version of the named schema: `404` when it does not exist, `503` when unreachable
    /// or (Glue) not answered within `registry.timeout_ms`. Runs on the core's runtime; a file is
    /// read on one of its blocking threads.
    pub async fn fetch(&self, name: &str, version: SchemaVersion) -> Result<SchemaText> {
        match self {
            Registry::Glue(g) => g.fetch(name, version).await,
            Registry::File(f) => {
                let (f, name) = (f.clone(), name.to_owned());
                runtime::run_blocking(move || f.fetch(&name)).await
            }
            Registry::Confluent(c) => {
                let version = match version {
                    SchemaVersion::Latest => confluent::Version::Latest,
                    SchemaVersion::Number(n) => confluent::Version::Number(n),
                };
                Ok(c.fetch(name, version).await?.into_text())
            }
        }
    }

    /// Its kind, as the metrics label it.
    pub fn kind(&self) -> crate::metrics::RegistryKind {
        match self {
            Registry::Glue(_) => crate::metrics::RegistryKind::Glue,
            Registry::File(_) => crate::metrics::RegistryKind::File,
            Registry::Confluent(_) => crate::metrics::RegistryKind::Confluent,
        }
    }

    /// Fetches the schema with a Confluent registry's global id `id`: `404` when the registry has
    /// none, `503` when unreachable; `400` for a registry of another kind (ids are Confluent's).
    /// Its `version_number` is `None`: an id names one schema, not a subject's version.
    pub async fn fetch_id(&self, id: u32) -> Result<SchemaText> {
        match self {
            Registry::Confluent(c) => Ok(SchemaText { version_number: None, ..c.fetch_id(id).await?.into_text() }),
            _ => Err(crate::error::Error::bad_request(format!(
                "schema id {id}: schema ids need a Confluent schema registry (registry.kind \"confluent\")"
            ))),
        }
    }

    /// Fetches the Glue schema version with UUID `version` (a record framed with it): `404` when
    /// Glue has none, `503` when unreachable; `400` for a registry of another kind.
    pub async fn fetch_glue_version(&self, version: uuid::Uuid) -> Result<SchemaText> {
        match self {
            Registry::Glue(g) => g.fetch_version_id(version).await,
            _ => Err(crate::error::Error::bad_request(format!(
                "Glue schema version {version}: version ids need a Glue registry (registry.kind \"glue\")"
            ))),
        }
    }

    /// The longest a request waits for one fetch: Glue's `timeout_ms` (both calls and any retry
    /// included), `FILE_READ_BOUND` for a file.
    pub fn bound(&self) -> Duration {
        match self {
            Registry::Glue(g) => g.timeout(),
            Registry::File(_) => FILE_READ_BOUND,
            Registry::Confluent(c) => c.timeout(),
        }
    }
}
