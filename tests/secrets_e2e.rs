//! Secrets end to end: a Secrets Manager secret and an SSM SecureString parameter on the local
//! AWS server (moto), resolved through the AWS SDK and merged into the variables the
//! configuration reads; and no secret value in the logs, neither while resolving nor while a
//! real stage and load run (the registry password and the warehouse token from the secret).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use aws_sdk_ssm::types::ParameterType;
use deltasink::config::{LoadConfig, StageConfig, vars};
use deltasink::registry::RegistryClient;
use deltasink::secrets::{self, AwsSecrets, Resolved, SecretError, SecretRef};
use deltasink::stage::Stager;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use deltasink_tests::*;

/// The SDK configuration for the local server of `scripts/services.sh env`.
async fn sdk() -> Result<aws_config::SdkConfig> {
    s3_endpoint()?;
    Ok(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// A name of its own for one test (moto keeps secrets for the life of the server).
fn unique(test: &str) -> Result<String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    Ok(format!(
        "deltasink-test-{test}-{}-{nanos}",
        std::process::id()
    ))
}

/// Creates a Secrets Manager secret; returns its ARN.
async fn create_secret(name: &str, text: &str) -> Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await?);
    let out = client
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .with_context(|| format!("creating secret {name} on the local server"))?;
    out.arn.context("CreateSecret answered without an ARN")
}

async fn put_parameter(name: &str, value: &str, kind: ParameterType) -> Result<()> {
    let client = aws_sdk_ssm::Client::new(&sdk().await?);
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("putting parameter {name} on the local server"))?;
    Ok(())
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_secrets_manager_json_secret_is_merged_by_arn_and_by_name() -> Result<()> {
    let name = unique("sm-json")?;
    let text = serde_json::json!({
        "DATABRICKS_CLIENT_SECRET": "dose-e2e-client-secret",
        "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH": "svc:e2e-registry-password",
    })
    .to_string();
    let arn = create_secret(&name, &text).await?;
    for id in [arn.as_str(), name.as_str()] {
        let mut vars = map(&[(vars::SECRET_ARN, id), (vars::DATABRICKS_CLIENT_ID, "sp-1")]);
        let resolved = secrets::resolve_from_env_vars(&mut vars).await?;
        assert_eq!(
            resolved,
            Some(Resolved {
                reference: SecretRef::SecretsManager(id.to_string()),
                variables: vec![
                    vars::DATABRICKS_CLIENT_SECRET,
                    vars::SCHEMA_REGISTRY_BASIC_AUTH
                ],
            })
        );
        assert_eq!(
            vars,
            map(&[
                (vars::SECRET_ARN, id),
                (vars::DATABRICKS_CLIENT_ID, "sp-1"),
                (vars::DATABRICKS_CLIENT_SECRET, "dose-e2e-client-secret"),
                (
                    vars::SCHEMA_REGISTRY_BASIC_AUTH,
                    "svc:e2e-registry-password"
                ),
            ])
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_ssm_secure_string_is_decrypted_and_merged() -> Result<()> {
    let name = format!("/{}/secret", unique("ssm")?);
    put_parameter(&name, "dapi-e2e-from-ssm", ParameterType::SecureString).await?;
    let mut vars = map(&[(vars::SECRET_SSM_PARAMETER, &name)]);
    let resolved = secrets::resolve_from_env_vars(&mut vars).await?;
    assert_eq!(
        resolved.map(|r| r.variables),
        Some(vec![vars::DATABRICKS_TOKEN])
    );
    assert_eq!(vars[vars::DATABRICKS_TOKEN], "dapi-e2e-from-ssm");
    Ok(())
}

#[tokio::test]
async fn a_plain_string_ssm_parameter_is_refused() -> Result<()> {
    let name = format!("/{}/secret", unique("ssm-plain")?);
    put_parameter(&name, "dapi-e2e-unencrypted", ParameterType::String).await?;
    let mut vars = map(&[(vars::SECRET_SSM_PARAMETER, &name)]);
    let err = secrets::resolve_from_env_vars(&mut vars).await;
    let Err(e @ SecretError::NotSecureString { .. }) = err else {
        bail!("expected NotSecureString, got {err:?}");
    };
    let msg = e.to_string();
    assert!(
        msg.contains(&name) && msg.contains("expected a SecureString"),
        "{msg}"
    );
    assert!(!msg.contains("dapi-e2e-unencrypted"), "{msg}");
    assert!(!vars.contains_key(vars::DATABRICKS_TOKEN));
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_names_it_and_the_permission_it_needs() -> Result<()> {
    sdk().await?;
    let missing = unique("missing")?;
    let mut vars = map(&[(vars::SECRET_ARN, &missing)]);
    let Err(e) = secrets::resolve_from_env_vars(&mut vars).await else {
        bail!("a missing secret resolved");
    };
    let msg = e.to_string();
    assert_eq!(e.variable(), vars::SECRET_ARN);
    assert!(msg.contains(&missing), "{msg}");
    assert!(msg.contains("ResourceNotFoundException"), "{msg}");
    assert!(msg.contains("secretsmanager:GetSecretValue"), "{msg}");

    let mut vars = map(&[(vars::SECRET_SSM_PARAMETER, &missing)]);
    let Err(e) = secrets::resolve_from_env_vars(&mut vars).await else {
        bail!("a missing parameter resolved");
    };
    let msg = e.to_string();
    assert_eq!(e.variable(), vars::SECRET_SSM_PARAMETER);
    assert!(
        msg.contains(&missing) && msg.contains("ParameterNotFound"),
        "{msg}"
    );
    assert!(
        msg.contains("ssm:GetParameter") && msg.contains("kms:Decrypt"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_service_fails_naming_the_secret() -> Result<()> {
    // Nothing listens on port 9 of loopback: the connection is refused at once. (The endpoint
    // is set on the client: AWS_ENDPOINT_URL in the environment wins over the shared config.)
    let sdk = sdk().await?;
    let unreachable = "http://127.0.0.1:9";
    let source = AwsSecrets::from_clients(
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .endpoint_url(unreachable)
                .build(),
        ),
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&sdk)
                .endpoint_url(unreachable)
                .build(),
        ),
    );
    let reference = SecretRef::SecretsManager("deltasink/unreachable".into());
    let mut vars = map(&[(vars::SECRET_ARN, reference.id())]);
    let err = secrets::resolve(&mut vars, &source).await;
    let Err(e @ SecretError::Unavailable { .. }) = err else {
        bail!("expected Unavailable, got {err:?}");
    };
    let msg = e.to_string();
    assert!(
        msg.contains("Secrets Manager secret deltasink/unreachable"),
        "{msg}"
    );
    assert!(msg.contains("dispatch failure"), "{msg}");
    assert!(
        msg.contains("VPC endpoint") && msg.contains("secretsmanager:GetSecretValue"),
        "{msg}"
    );

    let reference = SecretRef::SsmParameter("/deltasink/unreachable".into());
    let mut vars = map(&[(vars::SECRET_SSM_PARAMETER, reference.id())]);
    let Err(e) = secrets::resolve(&mut vars, &source).await else {
        bail!("an unreachable parameter resolved");
    };
    let msg = e.to_string();
    assert!(
        msg.contains("SSM parameter /deltasink/unreachable") && msg.contains("ssm:GetParameter"),
        "{msg}"
    );
    Ok(())
}

/// Every log line, at every level and from every crate (the SDK, reqwest, hyper included), of
/// resolving the secret and of a real stage (Avro, through the registry with the password from
/// the secret) and load (through the local warehouse with the token from the secret): no
/// secret value in any of them.
///
/// The subscriber is this thread's default; the current-thread runtime runs every task here.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_is_logged_while_resolving_staging_and_loading() -> Result<()> {
    let capture = LogCapture::new();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);

    let harness = Harness::new("secrets_logs").await?;
    // The local warehouse accepts exactly its own token: the load works only with it.
    let token = std::env::var(vars::DATABRICKS_TOKEN)
        .context("DATABRICKS_TOKEN is not set: run with `eval \"$(scripts/services.sh env)\"`")?;
    let password = format!("pw-{}", unique("registry")?);
    let basic_auth = format!("deltasink:{password}");
    let arn = create_secret(
        &unique("logs")?,
        &serde_json::json!({
            "DATABRICKS_TOKEN": token,
            "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH": basic_auth,
        })
        .to_string(),
    )
    .await?;

    // Stage: the registry's basic auth comes from the secret.
    let mut stage_vars = stage_vars(
        &harness.bucket,
        &[
            (vars::SECRET_ARN, &arn),
            (vars::ROUTES, &harness.routes()),
            (vars::SCHEMA_REGISTRY_URL, &registry_url()?),
            (
                vars::TOPICS,
                r#"{"shop.public.payments": {"key_format": "avro", "value_format": "avro"}}"#,
            ),
        ],
    );
    let resolved = secrets::resolve_from_env_vars(&mut stage_vars).await?;
    assert!(resolved.is_some());
    let config = Arc::new(StageConfig::from_vars(&stage_vars)?);
    let registry = config
        .registry
        .clone()
        .map(RegistryClient::new)
        .transpose()?;
    let stager = Stager::new(config, harness.store.clone(), registry);
    let mut announced = Vec::new();
    for event in ["msk-avro.json", "msk-debezium-json.json"] {
        let summary = stager.stage(&kafka_event(event)?).await?;
        assert_eq!(summary.records_to_errors, 0, "{event}: {summary:?}");
        for key in summary.keys.iter().filter(|k| k.starts_with("staging/")) {
            announced.push(harness.announce(key, &format!("m-{event}")));
        }
    }

    // Load: the warehouse token comes from the secret, not from a plain variable.
    let mut load_vars = harness.load_vars(None, &[(vars::SECRET_ARN, &arn)])?;
    load_vars.remove(vars::DATABRICKS_TOKEN);
    secrets::resolve_from_env_vars(&mut load_vars).await?;
    assert_eq!(load_vars.get(vars::DATABRICKS_TOKEN), Some(&token));
    let config = LoadConfig::from_vars(&load_vars)?;
    let warehouse = WarehouseClient::new(
        config.connection.clone(),
        config.credentials.clone(),
        ClientOptions::default(),
    )?;
    let loader = deltasink::load::loader::Loader::new(config, harness.store.clone(), warehouse);
    let report = loader.load(announced, long_deadline()).await;
    check_loaded(&report)?;
    // What an operator might log while debugging: the configuration holds the token.
    tracing::debug!(config = ?loader.config, ?report, "load configuration and report");
    for table in ["payments", "customers"] {
        let rows = query(
            &loader.warehouse,
            &format!("SELECT count(*) FROM {}", harness.table(table)),
        )
        .await?;
        let count: i64 = rows[0][0].as_deref().unwrap_or("0").parse()?;
        assert!(count > 0, "{table} is empty");
    }
    drop(guard);

    let logged = capture.text();
    let lines = logged.lines().count();
    for expected in [
        "configuration variables resolved from the secret",
        "DATABRICKS_TOKEN,DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH",
        "table loaded",
    ] {
        assert!(
            logged.contains(expected),
            "the capture lacks {expected:?} ({lines} lines): it did not see the run"
        );
    }
    use base64::Engine as _;
    let encoded_auth = base64::engine::general_purpose::STANDARD.encode(&basic_auth);
    for (what, secret) in [
        ("the warehouse token", token.as_str()),
        ("the registry password", password.as_str()),
        ("the registry basic auth header", encoded_auth.as_str()),
    ] {
        if let Some(at) = logged.find(secret) {
            let line = logged[..at].lines().count();
            bail!("{what} appears in the logs, line {line} of {lines}");
        }
    }
    Ok(())
}
