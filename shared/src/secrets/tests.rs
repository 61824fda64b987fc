use super::*;
use crate::config::{LoadConfig, StageConfig};
use crate::test_support::LogCapture;
use crate::warehouse::Credentials;

/// A value that must never show up in an error, a `Debug` output or a log line.
const TOKEN: &str = "dapi-s3cr3t-0123456789abcdef";
const CLIENT_SECRET: &str = "dose-cl1ent-s3cr3t";
const BASIC_AUTH: &str = "svc:regi5try-pa55word";

fn sm(id: &str) -> SecretRef {
    SecretRef::SecretsManager(id.to_string())
}

fn ssm(name: &str) -> SecretRef {
    SecretRef::SsmParameter(name.to_string())
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:deltasink-AbCdEf";

fn with_arn(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = map(&[(vars::SECRET_ARN, ARN)]);
    vars.extend(map(extra));
    vars
}

async fn resolve_text(
    vars: &mut HashMap<String, String>,
    text: &str,
) -> Result<Option<Resolved>, SecretError> {
    let reference = SecretRef::from_vars(vars)?.unwrap_or_else(|| sm(ARN));
    resolve(vars, &MemorySecrets::new().with(reference, text)).await
}

#[tokio::test]
async fn nothing_is_fetched_when_no_secret_is_named() {
    let source = MemorySecrets::new();
    let mut vars = map(&[
        (vars::DATABRICKS_TOKEN, "plain-local-token"),
        (vars::SECRET_ARN, "  "),
    ]);
    let before = vars.clone();
    assert_eq!(resolve(&mut vars, &source).await, Ok(None));
    assert_eq!(vars, before);
    assert!(source.fetched().is_empty());
}

#[tokio::test]
async fn a_plain_string_is_the_databricks_token() {
    let mut vars = with_arn(&[(vars::STAGING_BUCKET, "b")]);
    let source = MemorySecrets::new().with(sm(ARN), format!("  {TOKEN}\n"));
    let resolved = resolve(&mut vars, &source).await;
    assert_eq!(
        resolved,
        Ok(Some(Resolved {
            reference: sm(ARN),
            variables: vec![vars::DATABRICKS_TOKEN],
        }))
    );
    assert_eq!(vars[vars::DATABRICKS_TOKEN], TOKEN);
    assert_eq!(vars[vars::STAGING_BUCKET], "b");
    assert_eq!(source.fetched(), vec![sm(ARN)]);
}

#[tokio::test]
async fn a_json_object_sets_each_of_its_keys_from_an_ssm_parameter() {
    let mut vars = map(&[(vars::SECRET_SSM_PARAMETER, "/deltasink/prod")]);
    let text = serde_json::json!({
        "DATABRICKS_CLIENT_SECRET": CLIENT_SECRET,
        "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH": BASIC_AUTH,
    })
    .to_string();
    let source = MemorySecrets::new().with(ssm("/deltasink/prod"), text);
    let resolved = resolve(&mut vars, &source).await.ok().flatten();
    assert_eq!(
        resolved.map(|r| r.variables),
        Some(vec![
            vars::DATABRICKS_CLIENT_SECRET,
            vars::SCHEMA_REGISTRY_BASIC_AUTH
        ])
    );
    assert_eq!(vars[vars::DATABRICKS_CLIENT_SECRET], CLIENT_SECRET);
    assert_eq!(vars[vars::SCHEMA_REGISTRY_BASIC_AUTH], BASIC_AUTH);
    assert!(!vars.contains_key(vars::DATABRICKS_TOKEN));
}

#[tokio::test]
async fn naming_both_sources_is_an_error_and_fetches_nothing() {
    let source = MemorySecrets::new().with(sm(ARN), TOKEN);
    let mut vars = with_arn(&[(vars::SECRET_SSM_PARAMETER, "/deltasink/prod")]);
    let err = resolve(&mut vars, &source).await;
    assert_eq!(err, Err(SecretError::BothSources));
    assert!(source.fetched().is_empty());
    let text = SecretError::BothSources.to_string();
    assert!(text.contains(vars::SECRET_ARN) && text.contains(vars::SECRET_SSM_PARAMETER));
    // The same check guards resolve_from_env_vars before any AWS client is built.
    let err = resolve_from_env_vars(&mut vars).await;
    assert_eq!(err, Err(SecretError::BothSources));
}

#[tokio::test]
async fn a_key_also_set_as_a_plain_variable_is_ambiguous() {
    for text in [
        TOKEN.to_string(),
        serde_json::json!({ "DATABRICKS_TOKEN": TOKEN }).to_string(),
    ] {
        let mut vars = with_arn(&[(vars::DATABRICKS_TOKEN, "dapi-plain")]);
        let before = vars.clone();
        let err = resolve_text(&mut vars, &text).await;
        let Err(e @ SecretError::Conflict { .. }) = err else {
            panic!("expected a conflict, got {err:?}");
        };
        assert_eq!(e.variable(), vars::DATABRICKS_TOKEN);
        assert!(
            e.to_string()
                .starts_with("configuration DATABRICKS_TOKEN: ")
        );
        assert!(e.to_string().contains(ARN), "{e}");
        assert_eq!(vars, before, "nothing merged on error");
    }
    // A blank plain variable is unset (as the configuration reads it): the secret fills it.
    let mut vars = with_arn(&[(vars::DATABRICKS_TOKEN, " ")]);
    assert!(resolve_text(&mut vars, TOKEN).await.is_ok());
    assert_eq!(vars[vars::DATABRICKS_TOKEN], TOKEN);
}

#[tokio::test]
async fn an_unknown_key_is_an_error_naming_it() {
    let mut vars = with_arn(&[]);
    let text = serde_json::json!({ "DATABRICKS_TOKEN": TOKEN, "DATABRICKS_TOKN": TOKEN });
    let err = resolve_text(&mut vars, &text.to_string()).await;
    let Err(e) = err else { panic!("accepted") };
    assert!(
        matches!(&e, SecretError::UnknownKey { key, .. } if key == "DATABRICKS_TOKN"),
        "{e:?}"
    );
    assert_eq!(e.variable(), vars::SECRET_ARN);
    let msg = e.to_string();
    assert!(
        msg.starts_with("configuration DELTASINK_SECRET_ARN: "),
        "{msg}"
    );
    assert!(msg.contains("\"DATABRICKS_TOKN\"") && msg.contains("DATABRICKS_TOKEN,"));
    assert!(!vars.contains_key(vars::DATABRICKS_TOKEN));

    let text = serde_json::json!({ "databricks-token": TOKEN }).to_string();
    let Err(e) = resolve_text(&mut vars, &text).await else {
        panic!("accepted")
    };
    assert!(
        e.to_string().contains("(did you mean DATABRICKS_TOKEN?)"),
        "{e}"
    );
}

#[tokio::test]
async fn values_must_be_non_empty_strings() {
    for (value, found) in [
        serde_json::json!(12345),
        serde_json::json!(null),
        serde_json::json!(true),
        serde_json::json!([TOKEN]),
        serde_json::json!({ "token": TOKEN }),
        serde_json::json!("  "),
    ]
    .into_iter()
    .zip([
        "a number",
        "null",
        "a boolean",
        "an array",
        "an object",
        "an empty string",
    ]) {
        let mut vars = with_arn(&[]);
        let text = serde_json::json!({ "DATABRICKS_CLIENT_SECRET": value }).to_string();
        let err = resolve_text(&mut vars, &text).await;
        assert_eq!(
            err,
            Err(SecretError::NotString {
                reference: sm(ARN),
                key: vars::DATABRICKS_CLIENT_SECRET,
                found,
            })
        );
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("DATABRICKS_CLIENT_SECRET") && msg.contains("expected a non-empty string")
        );
    }
}

#[tokio::test]
async fn empty_and_malformed_secrets_are_errors() {
    for text in ["", " \n", "{}"] {
        let err = resolve_text(&mut with_arn(&[]), text).await;
        assert_eq!(
            err,
            Err(SecretError::Empty { reference: sm(ARN) }),
            "{text:?}"
        );
    }
    let text = format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}\",}}");
    let err = resolve_text(&mut with_arn(&[]), &text).await;
    assert!(
        matches!(err, Err(SecretError::NotJson { line: 1, .. })),
        "{err:?}"
    );
    let err = MemorySecrets::new()
        .with(sm(ARN), "x")
        .fetch(&sm("missing"))
        .await;
    assert!(matches!(err, Err(SecretError::Unavailable { .. })));
}

#[test]
fn the_expected_contents_list_every_key() {
    for key in SECRET_KEYS {
        assert!(EXPECTED.contains(key), "{key}");
    }
}

#[test]
fn infrastructure_errors_name_the_secret_and_the_permission() {
    let e = SecretError::Unavailable {
        reference: sm(ARN),
        detail: "AccessDeniedException: not authorized".into(),
    };
    let msg = e.to_string();
    assert!(
        msg.starts_with("configuration DELTASINK_SECRET_ARN: "),
        "{msg}"
    );
    assert!(
        msg.contains(ARN) && msg.contains("AccessDeniedException"),
        "{msg}"
    );
    assert!(msg.contains("secretsmanager:GetSecretValue") && msg.contains("kms:Decrypt"));

    let e = SecretError::Unavailable {
        reference: ssm("/deltasink/prod"),
        detail: "dispatch failure: connection refused".into(),
    };
    let msg = e.to_string();
    assert!(msg.starts_with("configuration DELTASINK_SECRET_SSM_PARAMETER: "));
    assert!(msg.contains("SSM parameter /deltasink/prod"), "{msg}");
    assert!(
        msg.contains("ssm:GetParameter") && msg.contains("kms:Decrypt"),
        "{msg}"
    );
    assert!(!msg.contains("Check the name"), "{msg}");

    let e = SecretError::Unavailable {
        reference: sm("deltasink/prod"),
        detail: "ResourceNotFoundException: Secrets Manager can't find the specified secret".into(),
    };
    let msg = e.to_string();
    assert!(
        msg.contains("Check the name (or ARN) and the function's region"),
        "{msg}"
    );
    assert!(msg.contains("secretsmanager:GetSecretValue"), "{msg}");
}

/// Every error a secret's contents can cause, with the secret values in it.
#[tokio::test]
async fn no_error_text_or_debug_contains_a_secret_value() {
    let texts = [
        format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}\", }}"),
        format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}\"}} {TOKEN}"),
        format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}"),
        format!("{{\"DATABRICKS_TOKEN\": [\"{TOKEN}\"]}}"),
        format!("{{\"DATABRICKS_TOKEN\": {{\"{TOKEN}\": \"{TOKEN}\"}}}}"),
        format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}\", \"SOMETHING\": \"{CLIENT_SECRET}\"}}"),
        format!("{{\"DATABRICKS_CLIENT_SECRET\": \"{CLIENT_SECRET}\", \"x\": 1}}"),
        format!(
            "{{\"DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH\": 42, \"DATABRICKS_TOKEN\": \"{TOKEN}\"}}"
        ),
        TOKEN.to_string(),
    ];
    let mut errors = 0;
    for text in &texts {
        // Also set as a plain variable, so the plain-string case fails as a conflict.
        let mut vars = with_arn(&[(vars::DATABRICKS_TOKEN, "dapi-plain")]);
        let Err(e) = resolve_text(&mut vars, text).await else {
            panic!("accepted {text:?}");
        };
        errors += 1;
        for shown in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
            for secret in [TOKEN, CLIENT_SECRET, BASIC_AUTH, "regi5try"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }
    assert_eq!(errors, texts.len());
}

#[test]
fn debug_output_redacts_secret_values() {
    let source = MemorySecrets::new()
        .with(sm(ARN), TOKEN)
        .with(ssm("/p"), BASIC_AUTH);
    let parsed = parse(&sm(ARN), &format!("{{\"DATABRICKS_TOKEN\": \"{TOKEN}\"}}"));
    for shown in [format!("{source:?}"), format!("{parsed:?}")] {
        assert!(
            !shown.contains(TOKEN) && !shown.contains(BASIC_AUTH),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

#[tokio::test]
async fn one_info_line_names_the_variables_and_the_source_but_no_value() {
    let capture = LogCapture::new();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut vars = with_arn(&[]);
    let text = serde_json::json!({
        "DATABRICKS_TOKEN": TOKEN,
        "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH": BASIC_AUTH,
    })
    .to_string();
    assert!(resolve_text(&mut vars, &text).await.is_ok());

    let logged = capture.text();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 1, "{logged}");
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(fields["source"], "secretsmanager");
    assert_eq!(fields["secret"], ARN);
    assert_eq!(
        fields["variables"],
        "DATABRICKS_TOKEN,DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH"
    );
    assert!(
        !logged.contains(TOKEN) && !logged.contains("regi5try"),
        "{logged}"
    );
}

/// The merged map is what the configurations read: the rest of the code is unchanged.
#[tokio::test]
async fn the_configurations_read_the_resolved_values() {
    let mut vars = with_arn(&[
        (vars::STAGING_BUCKET, "b"),
        (vars::DATABRICKS_HOST, "adb-1.2.azuredatabricks.net"),
        (vars::DATABRICKS_HTTP_PATH, "/sql/1.0/warehouses/abc"),
        (vars::SCHEMA_REGISTRY_URL, "https://registry.example.com"),
    ]);
    let text = serde_json::json!({
        "DATABRICKS_TOKEN": TOKEN,
        "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH": BASIC_AUTH,
    })
    .to_string();
    assert!(resolve_text(&mut vars, &text).await.is_ok());

    let load = LoadConfig::from_vars(&vars);
    match load.as_ref().map(|c| &c.credentials) {
        Ok(Credentials::Token(token)) => assert_eq!(token.expose(), TOKEN),
        other => panic!("unexpected credentials {other:?}"),
    }
    let stage = StageConfig::from_vars(&vars);
    let auth = stage
        .as_ref()
        .ok()
        .and_then(|c| c.registry.as_ref())
        .and_then(|r| r.basic_auth.clone());
    assert_eq!(
        auth,
        Some(("svc".to_string(), "regi5try-pa55word".to_string()))
    );
}
