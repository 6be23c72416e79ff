//! One AWS configuration (region + credentials provider) per distinct setting, shared by the
//! Glue client and the MSK IAM token signer, so credentials are resolved and cached once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::error::{Error, Result};
use crate::runtime;

/// Which AWS identity to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AwsSettings {
    /// Region; the standard chain decides when absent.
    pub region: Option<String>,
    /// Role to assume on top of the chain's credentials.
    pub role_arn: Option<String>,
    /// Session name for the assumed role.
    pub role_session_name: Option<String>,
}

static CONFIGS: LazyLock<Mutex<HashMap<AwsSettings, SdkConfig>>> = LazyLock::new(Default::default);

/// The shared AWS configuration for these settings; `key` names the config key in errors.
pub fn sdk_config(settings: &AwsSettings, key: &str) -> Result<SdkConfig> {
    if let Some(c) = CONFIGS.lock().unwrap_or_else(|p| p.into_inner()).get(settings) {
        return Ok(c.clone());
    }
    let s = settings.clone();
    let config = runtime::block_on(async move {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &s.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let base = loader.load().await;
        match &s.role_arn {
            None => base,
            Some(arn) => {
                let provider = AssumeRoleProvider::builder(arn.clone())
                    .configure(&base)
                    .session_name(s.role_session_name.clone().unwrap_or_else(|| "topicgate".to_owned()))
                    .build()
                    .await;
                base.into_builder()
                    .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                    .build()
            }
        }
    })?;
    if config.region().is_none() {
        return Err(Error::bad_request(format!(
            "config: {key}: not set, and no region found in the AWS environment (AWS_REGION, profile)"
        )));
    }
    CONFIGS.lock().unwrap_or_else(|p| p.into_inner()).insert(settings.clone(), config.clone());
    Ok(config)
}
