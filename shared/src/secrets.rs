//! Secrets at cold start: one Secrets Manager secret or one SSM SecureString parameter whose
//! values become configuration variables before the configuration is parsed.
//!
//! In production no secret is a plain environment variable or template parameter: a function
//! names where its secret lives (`DELTASINK_SECRET_ARN` or `DELTASINK_SECRET_SSM_PARAMETER`),
//! and [`resolve`] merges the secret's values into the variables map before
//! `StageConfig::from_vars` / `LoadConfig::from_vars` run, so the rest of the code reads them
//! like any other variable. The secret is a JSON object with any of [`SECRET_KEYS`] (string
//! values), or a plain string, taken as `DATABRICKS_TOKEN`.
//!
//! Rules, each an error naming the variable and what is expected: one source at most; a key
//! that is also set as a plain variable is ambiguous; an unknown key is a typo; values are
//! non-empty strings. No error, `Debug` output or log line carries a secret value.
//!
//! Like the rest of the library this never reads the process environment: `main` passes the
//! map it collected ([`resolve_from_env_vars`]).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::config::{Vars, vars};
use crate::warehouse::Secret;

/// The variables a secret may set.
pub const SECRET_KEYS: &[&str] = &[
    vars::DATABRICKS_TOKEN,
    vars::DATABRICKS_CLIENT_SECRET,
    vars::SCHEMA_REGISTRY_BASIC_AUTH,
];

/// Where the secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// A Secrets Manager secret, by ARN or name (`DELTASINK_SECRET_ARN`).
    SecretsManager(String),
    /// An SSM parameter name or ARN (`DELTASINK_SECRET_SSM_PARAMETER`), a SecureString.
    SsmParameter(String),
}

impl SecretRef {
    /// The reference the variables name; `None` when neither variable is set (blank is unset).
    pub fn from_vars(map: &HashMap<String, String>) -> Result<Option<SecretRef>, SecretError> {
        let v = Vars::new(map);
        match (v.get(vars::SECRET_ARN), v.get(vars::SECRET_SSM_PARAMETER)) {
            (Some(_), Some(_)) => Err(SecretError::BothSources),
            (Some(id), None) => Ok(Some(SecretRef::SecretsManager(id.to_string()))),
            (None, Some(name)) => Ok(Some(SecretRef::SsmParameter(name.to_string()))),
            (None, None) => Ok(None),
        }
    }

    /// The variable that names this reference.
    pub fn variable(&self) -> &'static str {
        match self {
            SecretRef::SecretsManager(_) => vars::SECRET_ARN,
            SecretRef::SsmParameter(_) => vars::SECRET_SSM_PARAMETER,
        }
    }

    /// The secret's ARN or name, or the parameter's name.
    pub fn id(&self) -> &str {
        match self {
            SecretRef::SecretsManager(id) | SecretRef::SsmParameter(id) => id,
        }
    }

    /// A short name of the service, for log fields.
    pub fn service(&self) -> &'static str {
        match self {
            SecretRef::SecretsManager(_) => "secretsmanager",
            SecretRef::SsmParameter(_) => "ssm",
        }
    }

    /// What the function's role needs to read it.
    fn permission(&self) -> &'static str {
        match self {
            SecretRef::SecretsManager(_) => {
                "The function's role needs secretsmanager:GetSecretValue on the secret, and \
                 kms:Decrypt on its key when it is encrypted with a customer-managed KMS key"
            }
            SecretRef::SsmParameter(_) => {
                "The function's role needs ssm:GetParameter on the parameter, and kms:Decrypt \
                 on its key when the SecureString uses a customer-managed KMS key"
            }
        }
    }
}

/// What to check when a secret could not be read: the name when it was not found, always the
/// permission.
fn unavailable_hint(reference: &SecretRef, detail: &str) -> String {
    let not_found = ["ResourceNotFoundException", "ParameterNotFound"]
        .iter()
        .any(|code| detail.contains(code));
    if not_found {
        format!(
            "Check the name (or ARN) and the function's region. {}",
            reference.permission()
        )
    } else {
        reference.permission().to_string()
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::SecretsManager(id) => write!(f, "Secrets Manager secret {id}"),
            SecretRef::SsmParameter(name) => write!(f, "SSM parameter {name}"),
        }
    }
}

/// What a secret must hold, for error messages.
const EXPECTED: &str = "expected a JSON object with any of the keys DATABRICKS_TOKEN, \
                        DATABRICKS_CLIENT_SECRET, DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH (string \
                        values), or a plain string (the DATABRICKS_TOKEN)";

/// A secret that could not be resolved. Messages name the variable and what is expected, and
/// never contain a secret value (only names, key names and JSON positions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "configuration {arn}: set either {arn} (a Secrets Manager secret) or {ssm} (an SSM \
         SecureString parameter), not both",
        arn = vars::SECRET_ARN,
        ssm = vars::SECRET_SSM_PARAMETER
    )]
    BothSources,
    /// The service could not be reached or refused (not found, access denied, KMS): an
    /// infrastructure failure.
    #[error(
        "configuration {variable}: could not read the {reference}: {detail}. {hint}",
        variable = .reference.variable(),
        hint = unavailable_hint(.reference, .detail)
    )]
    Unavailable {
        reference: SecretRef,
        detail: String,
    },
    #[error(
        "configuration {variable}: the {reference} has no text value ({what}): {EXPECTED}",
        variable = .reference.variable()
    )]
    NoText {
        reference: SecretRef,
        what: &'static str,
    },
    #[error(
        "configuration {variable}: the {reference} is a {found} parameter: expected a \
         SecureString (secrets are stored encrypted)",
        variable = .reference.variable()
    )]
    NotSecureString { reference: SecretRef, found: String },
    #[error(
        "configuration {variable}: the {reference} is empty: {EXPECTED}",
        variable = .reference.variable()
    )]
    Empty { reference: SecretRef },
    #[error(
        "configuration {variable}: the {reference} starts with `{{` but is not valid JSON \
         (syntax error at line {line}, column {column}): {EXPECTED}",
        variable = .reference.variable()
    )]
    NotJson {
        reference: SecretRef,
        line: usize,
        column: usize,
    },
    #[error(
        "configuration {variable}: the {reference} has unknown key {key:?}{suggestion}: {EXPECTED}",
        variable = .reference.variable(),
        suggestion = suggestion(.key)
    )]
    UnknownKey { reference: SecretRef, key: String },
    #[error(
        "configuration {variable}: key {key} of the {reference}: expected a non-empty string \
         value, got {found}",
        variable = .reference.variable()
    )]
    NotString {
        reference: SecretRef,
        key: &'static str,
        found: &'static str,
    },
    #[error(
        "configuration {key}: set both as a plain variable and in the {reference} (named by \
         {variable}); keep it in one place only (the secret, in production)",
        variable = .reference.variable()
    )]
    Conflict {
        reference: SecretRef,
        key: &'static str,
    },
}

impl SecretError {
    /// Whether trying again may succeed: the service could not be reached or refused. Every
    /// other error is a setting or a secret an operator must fix.
    pub fn is_infrastructure(&self) -> bool {
        matches!(self, SecretError::Unavailable { .. })
    }

    /// The variable the error is about, for the `variable` log field.
    pub fn variable(&self) -> &str {
        match self {
            SecretError::BothSources => vars::SECRET_ARN,
            SecretError::Conflict { key, .. } => key,
            SecretError::Unavailable { reference, .. }
            | SecretError::NoText { reference, .. }
            | SecretError::NotSecureString { reference, .. }
            | SecretError::Empty { reference }
            | SecretError::NotJson { reference, .. }
            | SecretError::UnknownKey { reference, .. }
            | SecretError::NotString { reference, .. } => reference.variable(),
        }
    }
}

/// `" (did you mean DATABRICKS_TOKEN?)"` for a key that differs from a known one only in case
/// or `-`/`_`.
fn suggestion(key: &str) -> String {
    let fold = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    SECRET_KEYS
        .iter()
        .find(|known| fold(known) == fold(key.trim()))
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default()
}

/// Reads a secret's text.
pub trait SecretSource: Send + Sync {
    fn fetch(
        &self,
        reference: &SecretRef,
    ) -> impl Future<Output = Result<Secret, SecretError>> + Send;
}

/// What [`resolve`] did: the source and the variables it set (names only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub reference: SecretRef,
    pub variables: Vec<&'static str>,
}

/// The variables a secret's text sets, in [`SECRET_KEYS`] order; validated, values redacted
/// in `Debug`.
pub fn parse(
    reference: &SecretRef,
    text: &str,
) -> Result<Vec<(&'static str, Secret)>, SecretError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SecretError::Empty {
            reference: reference.clone(),
        });
    }
    if !text.starts_with('{') {
        return Ok(vec![(vars::DATABRICKS_TOKEN, Secret::new(text))]);
    }
    // Only the position of a syntax error is reported: serde_json's messages may quote input.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| SecretError::NotJson {
            reference: reference.clone(),
            line: e.line(),
            column: e.column(),
        })?;
    if let Some(key) = object.keys().find(|k| !SECRET_KEYS.contains(&k.as_str())) {
        return Err(SecretError::UnknownKey {
            reference: reference.clone(),
            key: key.clone(),
        });
    }
    if object.is_empty() {
        return Err(SecretError::Empty {
            reference: reference.clone(),
        });
    }
    let mut values = Vec::with_capacity(object.len());
    for &key in SECRET_KEYS {
        let not_string = |found| SecretError::NotString {
            reference: reference.clone(),
            key,
            found,
        };
        match object.get(key) {
            None => {}
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
                return Err(not_string("an empty string"));
            }
            Some(serde_json::Value::String(s)) => values.push((key, Secret::new(s.trim()))),
            Some(serde_json::Value::Null) => return Err(not_string("null")),
            Some(serde_json::Value::Bool(_)) => return Err(not_string("a boolean")),
            Some(serde_json::Value::Number(_)) => return Err(not_string("a number")),
            Some(serde_json::Value::Array(_)) => return Err(not_string("an array")),
            Some(serde_json::Value::Object(_)) => return Err(not_string("an object")),
        }
    }
    Ok(values)
}

/// Resolves the secret the variables name (if any) through `source` and merges its values
/// into `vars`. Returns `None`, fetching nothing, when neither `DELTASINK_SECRET_ARN` nor
/// `DELTASINK_SECRET_SSM_PARAMETER` is set. On error `vars` is unchanged.
pub async fn resolve(
    vars: &mut HashMap<String, String>,
    source: &impl SecretSource,
) -> Result<Option<Resolved>, SecretError> {
    let Some(reference) = SecretRef::from_vars(vars)? else {
        return Ok(None);
    };
    let text = source.fetch(&reference).await?;
    let values = parse(&reference, text.expose())?;
    let plain = Vars::new(vars);
    if let Some((key, _)) = values.iter().find(|(key, _)| plain.get(key).is_some()) {
        return Err(SecretError::Conflict { reference, key });
    }
    let variables: Vec<&'static str> = values.iter().map(|(key, _)| *key).collect();
    for (key, value) in values {
        vars.insert(key.to_string(), value.expose().to_string());
    }
    tracing::info!(
        source = reference.service(),
        secret = reference.id(),
        variables = %variables.join(","),
        "configuration variables resolved from the secret"
    );
    Ok(Some(Resolved {
        reference,
        variables,
    }))
}

/// For a function's `main`: resolves the secret `vars` names through AWS (the standard
/// configuration chain) and merges it into `vars`. Builds no AWS client and does nothing when
/// neither variable is set, so local runs need no secret.
pub async fn resolve_from_env_vars(
    vars: &mut HashMap<String, String>,
) -> Result<Option<Resolved>, SecretError> {
    if SecretRef::from_vars(vars)?.is_none() {
        return Ok(None);
    }
    resolve(vars, &AwsSecrets::from_env().await).await
}

/// Secrets Manager and SSM through the AWS SDK (`AWS_ENDPOINT_URL` for a local server).
#[derive(Clone, Debug)]
pub struct AwsSecrets {
    secrets_manager: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
}

impl AwsSecrets {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsSecrets {
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }

    /// From clients configured by the caller (e.g. another endpoint).
    pub fn from_clients(
        secrets_manager: aws_sdk_secretsmanager::Client,
        ssm: aws_sdk_ssm::Client,
    ) -> Self {
        AwsSecrets {
            secrets_manager,
            ssm,
        }
    }

    /// Clients from the standard AWS configuration chain.
    pub async fn from_env() -> Self {
        AwsSecrets::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    }
}

/// An SDK failure as `Unavailable`: the service's error code and message, or the transport
/// failure with its causes (the SDK's top-level message alone is "service error").
fn unavailable<E, R>(reference: &SecretRef, e: SdkError<E, R>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut detail = match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("service error"),
                err.message().unwrap_or("no message")
            )
        }
        _ => e.to_string(),
    };
    if !matches!(e, SdkError::ServiceError(_)) {
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
    }
    detail.truncate(detail.trim_end_matches(['.', ' ']).len());
    if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
        detail.push_str(
            " (the service did not answer: a function in a VPC needs a NAT gateway or an \
             interface VPC endpoint for it)",
        );
    }
    SecretError::Unavailable {
        reference: reference.clone(),
        detail,
    }
}

impl SecretSource for AwsSecrets {
    async fn fetch(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let no_text = |what| SecretError::NoText {
            reference: reference.clone(),
            what,
        };
        match reference {
            SecretRef::SecretsManager(id) => {
                let out = self
                    .secrets_manager
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| unavailable(reference, e))?;
                out.secret_string
                    .map(Secret::new)
                    .ok_or_else(|| no_text("a binary secret is not read"))
            }
            SecretRef::SsmParameter(name) => {
                let parameter = self
                    .ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| unavailable(reference, e))?
                    .parameter
                    .ok_or_else(|| no_text("the answer carried no parameter"))?;
                match parameter.r#type {
                    Some(aws_sdk_ssm::types::ParameterType::SecureString) | None => {}
                    Some(other) => {
                        return Err(SecretError::NotSecureString {
                            reference: reference.clone(),
                            found: other.as_str().to_string(),
                        });
                    }
                }
                parameter
                    .value
                    .map(Secret::new)
                    .ok_or_else(|| no_text("the parameter has no value"))
            }
        }
    }
}

/// Secrets in memory, for tests. `Debug` shows the references, never the values.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    secrets: HashMap<SecretRef, Secret>,
    fetched: Mutex<Vec<SecretRef>>,
}

impl MemorySecrets {
    pub fn new() -> Self {
        MemorySecrets::default()
    }

    /// Adds (or replaces) the secret at `reference`.
    pub fn with(mut self, reference: SecretRef, text: impl Into<String>) -> Self {
        self.secrets.insert(reference, Secret::new(text));
        self
    }

    /// The references fetched so far, in order.
    pub fn fetched(&self) -> Vec<SecretRef> {
        self.fetched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl SecretSource for MemorySecrets {
    async fn fetch(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        self.fetched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(reference.clone());
        self.secrets
            .get(reference)
            .cloned()
            .ok_or_else(|| SecretError::Unavailable {
                reference: reference.clone(),
                detail: "ResourceNotFoundException: not found".to_string(),
            })
    }
}

#[cfg(test)]
mod tests;
