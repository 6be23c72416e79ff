//! TLS and SASL settings for the brokers, mapped onto librdkafka properties; secrets are taken as
//! written (the core expands no `${VAR}`: a host does that once, before, as the plugin does) and
//! never appear in messages. Its functions
//! take these settings, not the `kafka` config section that holds them: config builds on this
//! module, not the reverse.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// TLS to the brokers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle (PEM) to verify brokers with; the system roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted client key, as written.
    #[serde(default)]
    pub key_password: Option<Secret>,
    /// Check that the broker certificate names the host connected to (default true).
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

/// A secret config value (password), taken as written; printed as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// SASL authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "mechanism", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuthConfig {
    /// SASL/PLAIN.
    Plain {
        /// User name.
        username: String,
        /// Password, as written.
        password: Secret,
    },
    /// SASL/SCRAM-SHA-256.
    #[serde(rename = "scram-sha-256")]
    ScramSha256 {
        /// User name.
        username: String,
        /// Password, as written.
        password: Secret,
    },
    /// SASL/SCRAM-SHA-512.
    #[serde(rename = "scram-sha-512")]
    ScramSha512 {
        /// User name.
        username: String,
        /// Password, as written.
        password: Secret,
    },
    /// AWS MSK IAM: SASL/OAUTHBEARER with tokens signed by `aws-msk-iam-sasl-signer`.
    AwsMskIam {
        /// AWS region of the cluster; the standard AWS chain decides when absent.
        #[serde(default)]
        region: Option<String>,
        /// Role to assume for signing.
        #[serde(default)]
        role_arn: Option<String>,
        /// Session name of the assumed role (default `topicgate`).
        #[serde(default)]
        role_session_name: Option<String>,
        /// Lifetime reported to librdkafka instead of the token's own (refreshes at 80% of it).
        #[serde(default)]
        token_lifetime_ms: Option<u64>,
    },
}

/// librdkafka properties the `tls` and `auth` keys own; setting them in `properties` too is ambiguous.
const SECURITY_PROPERTIES: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
];

/// Checks the security keys;
/// `properties` are the user's other librdkafka properties, which must not set what these own.
pub fn validate(
    tls: Option<&TlsConfig>,
    auth: Option<&AuthConfig>,
    properties: &BTreeMap<String, String>,
) -> Result<()> {
    if tls.is_some() || auth.is_some() {
        if let Some(p) = SECURITY_PROPERTIES.iter().find(|p| properties.contains_key(**p)) {
            return Err(Error::bad_request(format!(
                "config: kafka.properties.{p}: set by kafka.tls / kafka.auth; remove it"
            )));
        }
    }
    if let Some(tls) = tls {
        for (key, file) in [("ca_file", &tls.ca_file), ("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if let Some(path) = file {
                if !path.is_file() {
                    return Err(Error::bad_request(format!(
                        "config: kafka.tls.{key}: {} is not a readable file",
                        path.display()
                    )));
                }
            }
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(Error::bad_request("config: kafka.tls: cert_file and key_file go together"));
        }
    }
    Ok(())
}

/// Adds `security.protocol`, `ssl.*` and `sasl.*` for the configured TLS and auth.
pub fn add_properties(
    tls: Option<&TlsConfig>,
    auth: Option<&AuthConfig>,
    props: &mut BTreeMap<String, String>,
) -> Result<()> {
    let mut set = |k: &str, v: String| {
        props.insert(k.to_owned(), v);
    };
    let protocol = match (tls.is_some(), auth.is_some()) {
        (false, false) => None,
        (true, false) => Some("ssl"),
        (false, true) => Some("sasl_plaintext"),
        (true, true) => Some("sasl_ssl"),
    };
    if let Some(protocol) = protocol {
        set("security.protocol", protocol.to_owned());
    }
    if let Some(tls) = tls {
        if let Some(ca) = &tls.ca_file {
            set("ssl.ca.location", ca.display().to_string());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            set("ssl.certificate.location", cert.display().to_string());
            set("ssl.key.location", key.display().to_string());
        }
        if let Some(pw) = &tls.key_password {
            set("ssl.key.password", pw.0.clone());
        }
        set("enable.ssl.certificate.verification", "true".to_owned());
        set("ssl.endpoint.identification.algorithm", if tls.verify_hostname { "https" } else { "none" }.to_owned());
    }
    let sasl = |mechanism: &str, username: &str, password: &Secret| -> [(&'static str, String); 3] {
        [
            ("sasl.mechanism", mechanism.to_owned()),
            ("sasl.username", username.to_owned()),
            ("sasl.password", password.0.clone()),
        ]
    };
    let entries: Vec<(&str, String)> = match auth {
        None => vec![],
        Some(AuthConfig::Plain { username, password }) => sasl("PLAIN", username, password).into(),
        Some(AuthConfig::ScramSha256 { username, password }) => sasl("SCRAM-SHA-256", username, password).into(),
        Some(AuthConfig::ScramSha512 { username, password }) => sasl("SCRAM-SHA-512", username, password).into(),
        Some(AuthConfig::AwsMskIam { .. }) => vec![("sasl.mechanism", "OAUTHBEARER".to_owned())],
    };
    for (k, v) in entries {
        set(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(kafka_extra: &str) -> Result<Config> {
        Config::from_json(&format!(
            r#"{{"kafka":{{"bootstrap_servers":"b:1"{kafka_extra}}},"registry":{{"kind":"glue","registry_name":"r","region":"us-east-1"}}}}"#
        ))
    }

    #[test]
    fn scram_over_tls_maps_to_librdkafka_properties() {
        let ca = std::env::current_exe().unwrap(); // any readable file
        let c = config(&format!(
            r#","tls":{{"ca_file":"{}"}},"auth":{{"mechanism":"scram-sha-512","username":"alice","password":"pw-${{HOME}}-$${{x}}"}}"#,
            ca.display()
        ))
        .unwrap();
        let p = c.producer_properties().unwrap();
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["sasl.username"], "alice");
        assert_eq!(p["sasl.password"], "pw-${HOME}-$${x}", "a secret is taken as written");
        assert_eq!(p["ssl.ca.location"], ca.display().to_string());
        assert_eq!(p["ssl.endpoint.identification.algorithm"], "https");
    }

    #[test]
    fn protocol_follows_tls_and_auth() {
        let p = config(r#","tls":{}"#).unwrap().producer_properties().unwrap();
        assert_eq!(p["security.protocol"], "ssl");
        assert!(!p.contains_key("ssl.ca.location"));
        let p = config(r#","tls":{"verify_hostname":false}"#).unwrap().producer_properties().unwrap();
        assert_eq!(p["ssl.endpoint.identification.algorithm"], "none");
        let p = config(r#","auth":{"mechanism":"plain","username":"u","password":"p"}"#)
            .unwrap()
            .producer_properties()
            .unwrap();
        assert_eq!((p["security.protocol"].as_str(), p["sasl.mechanism"].as_str()), ("sasl_plaintext", "PLAIN"));
        let p = config(r#","tls":{},"auth":{"mechanism":"aws-msk-iam","region":"eu-west-1"}"#)
            .unwrap()
            .producer_properties()
            .unwrap();
        assert_eq!((p["security.protocol"].as_str(), p["sasl.mechanism"].as_str()), ("sasl_ssl", "OAUTHBEARER"));
        assert!(!config("").unwrap().producer_properties().unwrap().contains_key("security.protocol"));
    }

    #[test]
    fn errors_name_the_key_and_never_the_secret() {
        let e = config(r#","auth":{"mechanism":"kerberos"}"#).unwrap_err();
        assert!(e.message.contains("kafka.auth") && e.message.contains("kerberos"), "{}", e.message);
        let e = config(
            r#","auth":{"mechanism":"plain","username":"u","password":"hunter2"},"properties":{"sasl.password":"x"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("kafka.properties.sasl.password"), "{}", e.message);
        // Certificate checks are on whenever kafka.tls is: turning them off in the properties was
        // overwritten silently; now it is refused.
        let e = config(r#","tls":{},"properties":{"enable.ssl.certificate.verification":"false"}"#).unwrap_err();
        assert!(e.message.contains("kafka.properties.enable.ssl.certificate.verification"), "{}", e.message);
        let e = config(r#","tls":{"ca_file":"/nonexistent/ca.pem"}"#).unwrap_err();
        assert!(e.message.contains("kafka.tls.ca_file"), "{}", e.message);
        let e = config(r#","tls":{"cert_file":"/etc/hostname"}"#).unwrap_err();
        assert!(e.message.contains("cert_file and key_file"), "{}", e.message);
        assert!(!format!(
            "{:?}",
            config(r#","auth":{"mechanism":"plain","username":"u","password":"hunter2"}"#).map(|_| ())
        )
        .contains("hunter2"));
    }
}
