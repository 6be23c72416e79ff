//! A Confluent-compatible Schema Registry (Confluent's own, Apicurio's `ccompat` API, Karapace,
//! Redpanda) over its REST API: a subject's version (pinned or latest) with its references.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{SchemaFormat, SchemaText};
use crate::error::{Error, Result};

/// How deep schema references may nest (a reference's references, …): deeper is refused as a
/// registry fault rather than followed without end.
const MAX_REFERENCE_DEPTH: usize = 16;
/// Most schemas one subject version may pull in through its references.
const MAX_REFERENCES: usize = 256;

/// How the client authenticates to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP basic authentication (Confluent's `basic.auth.user.info`).
    Basic {
        /// User name (Confluent Cloud: the API key).
        username: String,
        /// Password (Confluent Cloud: the API secret).
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// The schema type of a subject version, from the registry's `schemaType` (absent means Avro).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `AVRO`.
    Avro,
    /// `JSON` (JSON Schema).
    Json,
    /// `PROTOBUF`.
    Protobuf,
}

/// One subject version as the registry holds it, with every schema it references.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    /// The subject asked for.
    pub subject: String,
    /// The version number the registry gave.
    pub version: i64,
    /// The global schema id: what the Confluent wire format carries.
    pub id: u32,
    /// The schema's type.
    pub schema_type: SchemaType,
    /// The schema text.
    pub schema: String,
    /// The referenced schemas by reference name (a Protobuf import path, an Avro full name, a
    /// JSON Schema `$ref` URL), transitively.
    pub references: BTreeMap<String, String>,
}

impl SubjectVersion {
    /// The version as the schema cache compiles it. A JSON Schema without `$schema` is read as
    /// draft 7, the default of Confluent's JSON Schema serializers (`json.schema.spec.version`).
    pub fn into_text(self) -> SchemaText {
        let (format, extension) = match self.schema_type {
            SchemaType::Avro => (SchemaFormat::Avro, "avsc"),
            SchemaType::Json => (SchemaFormat::JsonSchema { default_draft: jsonschema::Draft::Draft7 }, "json"),
            SchemaType::Protobuf => (SchemaFormat::Protobuf, "proto"),
        };
        SchemaText {
            file_name: format!("{}.{extension}", self.subject),
            definition: self.schema,
            format,
            version_id: None,
            version_number: Some(self.version),
            import_dir: None,
            schema_id: Some(self.id),
            references: self.references,
        }
    }
}

/// A client of one Confluent-compatible registry.
#[derive(Debug)]
pub struct ConfluentRegistry {
    client: reqwest::Client,
    base: reqwest::Url,
    auth: Auth,
    /// The whole of one fetch, references included.
    timeout: Duration,
}

#[derive(Deserialize)]
struct VersionBody {
    #[serde(default)]
    subject: Option<String>,
    version: i64,
    id: u32,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    schema: String,
    #[serde(default)]
    references: Vec<Reference>,
}

/// `GET /schemas/ids/<id>`'s answer.
#[derive(Deserialize)]
struct IdBody {
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
    schema: String,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Deserialize, Clone)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Which version of a subject to fetch.
#[derive(Debug, Clone, Copy)]
pub enum Version {
    /// The subject's latest version.
    Latest,
    /// One pinned version number.
    Number(i64),
}

impl ConfluentRegistry {
    /// A client for the registry at `url` (its API root, e.g. `https://sr:8081` or
    /// `http://apicurio:8080/apis/ccompat/v7`); `ca_file` adds a PEM CA to the trusted roots.
    /// Makes no request.
    pub fn new(url: &str, auth: Auth, ca_file: Option<&PathBuf>, timeout_ms: u64) -> Result<ConfluentRegistry> {
        let mut base = reqwest::Url::parse(url)
            .map_err(|e| Error::bad_request(format!("config: registry.url: not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::bad_request("config: registry.url: must be an http:// or https:// URL"));
        }
        // Paths are appended segment by segment below: a trailing slash would leave an empty one.
        if base.path().ends_with('/') {
            let trimmed = base.path().trim_end_matches('/').to_owned();
            base.set_path(&trimmed);
        }
        let timeout = Duration::from_millis(timeout_ms);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            // The registry is named by the operator; never follow it elsewhere with the credentials.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::bad_request(format!("config: registry.ca_file: {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::bad_request(format!("config: registry.ca_file: {}: not PEM certificates ({e})", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Error::bad_request(format!(
                    "config: registry.ca_file: {}: no certificate in it",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::bad_request(format!("config: registry: cannot build a client ({e})")))?;
        Ok(ConfluentRegistry { client, base, auth, timeout })
    }

    /// The bound of one fetch (`registry.timeout_ms`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches `version` of `subject` and, transitively, every schema it references, all within
    /// `timeout`: `404` when the subject or version does not exist, `503` when the registry is
    /// unreachable, slow, failing, refuses the credentials or answers what is not a schema version
    /// (malformed, an unknown schema type, a reference it does not have).
    pub async fn fetch(&self, subject: &str, version: Version) -> Result<SubjectVersion> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded(subject, version)).await.unwrap_or_else(|_| {
            Err(Error::unavailable(format!(
                "schema registry timed out fetching subject `{subject}` (no answer within registry.timeout_ms, {} ms)",
                self.timeout.as_millis()
            )))
        })
    }

    async fn fetch_unbounded(&self, subject: &str, version: Version) -> Result<SubjectVersion> {
        let top = self.get_version(subject, version).await?;
        let what = format!("subject `{subject}`");
        let references = self.resolve_references(&what, &top.references).await?;
        Ok(SubjectVersion {
            subject: top.subject.unwrap_or_else(|| subject.to_owned()),
            version: top.version,
            id: top.id,
            schema_type: schema_type(&what, top.schema_type.as_deref())?,
            schema: top.schema,
            references,
        })
    }

    /// Fetches the schema with global id `id` (`GET /schemas/ids/<id>`) and every schema it
    /// references, within `timeout`: `404` when the registry has no such id, `503` as for
    /// [`ConfluentRegistry::fetch`]. The answer's `subject` is `schema-<id>` and its `version` 0: an
    /// id names no subject.
    pub async fn fetch_id(&self, id: u32) -> Result<SubjectVersion> {
        let what = format!("schema id {id}");
        let fetch = async {
            let mut url = self.base.clone();
            url.path_segments_mut().expect("checked in new: the URL can be a base").extend([
                "schemas",
                "ids",
                &id.to_string(),
            ]);
            let body: IdBody =
                self.get(url, &what, |_| Error::not_found(format!("{what} not found in the registry"))).await?;
            let references = self.resolve_references(&what, &body.references).await?;
            Ok(SubjectVersion {
                subject: format!("schema-{id}"),
                version: 0,
                id,
                schema_type: schema_type(&what, body.schema_type.as_deref())?,
                schema: body.schema,
                references,
            })
        };
        tokio::time::timeout(self.timeout, fetch).await.unwrap_or_else(|_| {
            Err(Error::unavailable(format!(
                "schema registry timed out fetching {what} (no answer within registry.timeout_ms, {} ms)",
                self.timeout.as_millis()
            )))
        })
    }

    /// Every schema `refs` reference, transitively, by reference name; `what` names the schema
    /// that holds them in messages.
    async fn resolve_references(&self, what: &str, refs: &[Reference]) -> Result<BTreeMap<String, String>> {
        let mut references = BTreeMap::new();
        // Depth-first over the reference graph; a name already resolved is not fetched again.
        let mut todo: Vec<(Reference, usize)> = refs.iter().map(|r| (r.clone(), 1)).collect();
        while let Some((r, depth)) = todo.pop() {
            if references.contains_key(&r.name) {
                continue;
            }
            if depth > MAX_REFERENCE_DEPTH || references.len() >= MAX_REFERENCES {
                return Err(Error::unavailable(format!(
                    "schema registry: {what} has references nested deeper than {MAX_REFERENCE_DEPTH} \
                     or more than {MAX_REFERENCES} in all"
                )));
            }
            let v = self.get_version(&r.subject, Version::Number(r.version)).await.map_err(|e| match e.status {
                // The schema exists; a reference it names does not: the registry's data is broken.
                crate::error::Status::NotFound => Error::unavailable(format!(
                    "schema registry: {what} references `{}` (subject `{}` version {}), which it does not have",
                    r.name, r.subject, r.version
                )),
                _ => e,
            })?;
            todo.extend(v.references.iter().map(|n| (n.clone(), depth + 1)));
            references.insert(r.name, v.schema);
        }
        Ok(references)
    }

    /// GET `/subjects/<subject>/versions/<version>`.
    async fn get_version(&self, subject: &str, version: Version) -> Result<VersionBody> {
        let mut url = self.base.clone();
        let version_segment = match version {
            Version::Latest => "latest".to_owned(),
            Version::Number(n) => n.to_string(),
        };
        url.path_segments_mut().expect("checked in new: the URL can be a base").extend([
            "subjects",
            subject,
            "versions",
            &version_segment,
        ]);
        // 40401 subject not found, 40402 version not found (Confluent's codes). Apicurio answers
        // 40402 for `latest` of a missing subject: without a number, it is the subject.
        let not_found = |code: Option<i64>| match (code, version) {
            (Some(40402), Version::Number(n)) => {
                Error::not_found(format!("schema subject `{subject}` has no version {n}"))
            }
            _ => Error::not_found(format!("schema subject `{subject}` not found in the registry")),
        };
        self.get(url, &format!("subject `{subject}`"), not_found).await
    }

    /// GET `url` (with the credentials) and read its JSON answer; `what` names the asked-for
    /// schema in messages, and `not_found` makes the error of a `404` from its `error_code`.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: reqwest::Url,
        what: &str,
        not_found: impl FnOnce(Option<i64>) -> Error,
    ) -> Result<T> {
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/vnd.schemaregistry.v1+json, application/json");
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let response = request.send().await.map_err(|e| {
            let why = if e.is_timeout() { "timed out" } else { "unreachable" };
            Error::unavailable(format!("schema registry {why} fetching {what}"))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|_| Error::unavailable(format!("schema registry: the answer for {what} was cut off")))?;
        if status.is_success() {
            // A malformed answer (a broken proxy, another service at the URL) is the registry's
            // fault: retriable like its 5xx. serde's reason names a position and an expected
            // type, never the answer's text.
            return serde_json::from_slice::<T>(&body).map_err(|e| {
                Error::unavailable(format!("schema registry: the answer for {what} is not a schema version ({e})"))
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&body).ok();
        let code = detail.as_ref().and_then(|d| d.error_code);
        let said = detail.and_then(|d| d.message).unwrap_or_default();
        Err(match status.as_u16() {
            404 => not_found(code),
            401 | 403 => Error::unavailable(format!(
                "schema registry refused the credentials ({status}) fetching {what}: check registry.basic_auth \
                 or registry.bearer_token"
            )),
            429 | 500..=599 => Error::unavailable(format!(
                "schema registry unavailable ({status}{}) fetching {what}",
                if said.is_empty() { String::new() } else { format!(": {}", clip(&said)) }
            )),
            _ => Error::internal(format!(
                "schema registry refused the request for {what} ({status}{})",
                if said.is_empty() { String::new() } else { format!(": {}", clip(&said)) }
            )),
        })
    }
}

/// The schema type of a registry's `schemaType` (absent: Avro); `what` names the schema.
fn schema_type(what: &str, given: Option<&str>) -> Result<SchemaType> {
    match given {
        None | Some("AVRO") => Ok(SchemaType::Avro),
        Some("JSON") => Ok(SchemaType::Json),
        Some("PROTOBUF") => Ok(SchemaType::Protobuf),
        Some(other) => Err(Error::unavailable(format!(
            "schema registry: {what} has schema type `{other}`, not AVRO, JSON or PROTOBUF"
        ))),
    }
}

/// A registry's message, cut to a length fit for a log line and an HTTP answer.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_trailing_slashes_dropped() {
        let r = ConfluentRegistry::new("http://127.0.0.1:1/apis/ccompat/v7/", Auth::None, None, 1000).unwrap();
        assert_eq!(r.base.as_str(), "http://127.0.0.1:1/apis/ccompat/v7");
        for bad in ["127.0.0.1:8081", "ftp://x", "mailto:a@b"] {
            let e = ConfluentRegistry::new(bad, Auth::None, None, 1000).unwrap_err();
            assert!(e.message.starts_with("config: registry.url"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_ca_file_that_holds_no_certificate_is_a_config_error() {
        let path = std::env::temp_dir().join(format!("tg-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = ConfluentRegistry::new("https://127.0.0.1:1", Auth::None, Some(&path), 1000).unwrap_err();
        assert!(e.message.starts_with("config: registry.ca_file"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_unreachable_registry_is_503() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let r = ConfluentRegistry::new(&format!("http://{closed}"), Auth::None, None, 2000).unwrap();
        let e =
            crate::runtime::block_on(async move { r.fetch("t-value", Version::Latest).await }).unwrap().unwrap_err();
        assert_eq!(e.status, crate::error::Status::Unavailable, "{e}");
        assert!(e.message.contains("unreachable") && e.message.contains("t-value"), "{e}");
    }

    #[test]
    fn long_messages_are_clipped_on_a_char_boundary() {
        let s = "é".repeat(300);
        let c = clip(&s);
        assert_eq!(c.chars().count(), 201);
        assert!(c.ends_with('…'));
    }
}
