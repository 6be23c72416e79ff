//! AWS Glue Schema Registry through aws-sdk-glue: GetSchema for the data format and latest version, GetSchemaVersion for its text.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{DataFormat, SchemaId, SchemaVersionNumber};
use uuid::Uuid;

use super::{SchemaFormat, SchemaText};
use crate::aws::{self, AwsSettings};
use crate::config::SchemaVersion;
use crate::error::{Error, Result};

/// A Glue client bound to one registry.
#[derive(Debug)]
pub struct GlueRegistry {
    client: aws_sdk_glue::Client,
    registry_name: String,
    /// The whole of one fetch: both calls, every attempt and the backoff between them.
    timeout: Duration,
}

impl GlueRegistry {
    /// Resolves region and credentials through the standard AWS chain; makes no request.
    pub fn new(
        registry_name: &str,
        region: Option<&str>,
        endpoint_url: Option<&str>,
        timeout_ms: u64,
    ) -> Result<GlueRegistry> {
        let settings = AwsSettings { region: region.map(str::to_owned), role_arn: None, role_session_name: None };
        let sdk_config = aws::sdk_config(&settings, "registry.region")?;
        let timeout = Duration::from_millis(timeout_ms);
        let mut builder = aws_sdk_glue::config::Builder::from(&sdk_config)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout.min(Duration::from_secs(3)))
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(GlueRegistry {
            client: aws_sdk_glue::Client::from_conf(builder.build()),
            registry_name: registry_name.to_owned(),
            timeout,
        })
    }

    /// The bound of one fetch (`registry.timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches the latest or a pinned version of `name`: GetSchema, then GetSchemaVersion, both
    /// (with their retries) within `timeout`; past it, a `503`.
    pub async fn fetch(&self, name: &str, version: SchemaVersion) -> Result<SchemaText> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded(name, version)).await.unwrap_or_else(|_| {
            Err(Error::unavailable(format!(
                "schema registry timed out fetching `{name}` (no answer within registry.timeout_ms, {} ms)",
                self.timeout.as_millis()
            )))
        })
    }

    async fn fetch_unbounded(&self, name: &str, version: SchemaVersion) -> Result<SchemaText> {
        let schema_id = SchemaId::builder().registry_name(&self.registry_name).schema_name(name).build();
        let schema =
            self.client.get_schema().schema_id(schema_id.clone()).send().await.map_err(|e| self.map_error(name, e))?;
        let (format, extension) = format_of(schema.data_format(), &format!("`{name}`"), &self.registry_name)?;
        let number = match version {
            SchemaVersion::Number(n) => n,
            SchemaVersion::Latest => schema
                .latest_schema_version()
                .ok_or_else(|| Error::internal(format!("registry returned no latest version for schema `{name}`")))?,
        };
        let v = self
            .client
            .get_schema_version()
            .schema_id(schema_id)
            .schema_version_number(SchemaVersionNumber::builder().version_number(number).build())
            .send()
            .await
            .map_err(|e| self.map_error(name, e))?;
        let definition = v
            .schema_definition()
            .ok_or_else(|| Error::internal(format!("schema `{name}` version {number} has no definition")))?;
        let version_id = v
            .schema_version_id()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| Error::internal(format!("schema `{name}` version {number} has no valid version id")))?;
        Ok(SchemaText {
            file_name: format!("{name}.{extension}"),
            definition: definition.to_owned(),
            format,
            version_id: Some(version_id),
            version_number: Some(v.version_number().unwrap_or(number)),
            import_dir: None,
            schema_id: None,
            references: Default::default(),
        })
    }

    /// Fetches the schema version whose UUID is `version` (GetSchemaVersion by SchemaVersionId:
    /// what a Glue-framed record names), within `timeout`; past it, a `503`.
    pub async fn fetch_version_id(&self, version: Uuid) -> Result<SchemaText> {
        let what = format!("version {version}");
        tokio::time::timeout(self.timeout, async {
            let v = self
                .client
                .get_schema_version()
                .schema_version_id(version.to_string())
                .send()
                .await
                .map_err(|e| self.map_error(&what, e))?;
            let (format, extension) = format_of(v.data_format(), &what, &self.registry_name)?;
            let definition =
                v.schema_definition().ok_or_else(|| Error::internal(format!("schema {what} has no definition")))?;
            Ok(SchemaText {
                file_name: format!("glue-{version}.{extension}"),
                definition: definition.to_owned(),
                format,
                version_id: Some(version),
                version_number: v.version_number(),
                import_dir: None,
                schema_id: None,
                references: Default::default(),
            })
        })
        .await
        .unwrap_or_else(|_| {
            Err(Error::unavailable(format!(
                "schema registry timed out fetching schema {what} (no answer within registry.timeout_ms, {} ms)",
                self.timeout.as_millis()
            )))
        })
    }

    fn map_error<E: ProvideErrorMetadata + std::error::Error + 'static, R>(
        &self,
        name: &str,
        e: SdkError<E, R>,
    ) -> Error {
        let registry = &self.registry_name;
        match &e {
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or("unknown error");
                match code {
                    "EntityNotFoundException" => {
                        Error::not_found(format!("schema `{name}` not found in registry `{registry}`"))
                    }
                    "ThrottlingException" | "InternalServiceException" | "OperationTimeoutException" => {
                        Error::unavailable(format!("schema registry unavailable ({code}) for schema `{name}`"))
                    }
                    _ => Error::internal(format!("schema registry refused the request for `{name}`: {code}")),
                }
            }
            SdkError::TimeoutError(_) => Error::unavailable(format!("schema registry timed out fetching `{name}`")),
            _ => Error::unavailable(format!("schema registry unreachable fetching `{name}`")),
        }
    }
}

/// The schema format and file extension of Glue's data format; what it is not is an error naming
/// the schema (`what`).
fn format_of(data_format: Option<&DataFormat>, what: &str, registry: &str) -> Result<(SchemaFormat, &'static str)> {
    Ok(match data_format {
        Some(DataFormat::Protobuf) => (SchemaFormat::Protobuf, "proto"),
        Some(DataFormat::Avro) => (SchemaFormat::Avro, "avsc"),
        // Glue validates JSON Schemas of drafts 4, 6 and 7; 7 for one without `$schema`.
        Some(DataFormat::Json) => (SchemaFormat::JsonSchema { default_draft: jsonschema::Draft::Draft7 }, "json"),
        other => {
            return Err(Error::internal(format!(
                "schema {what} in registry `{registry}` is {}, not PROTOBUF, AVRO or JSON",
                other.map(|d| d.as_str()).unwrap_or("of unknown format")
            )))
        }
    })
}
