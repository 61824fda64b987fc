//! Authentication (PAT, OAuth M2M) and the absence of secrets from errors, Debug and logs.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::*;
use crate::test_support::LogCapture;

#[tokio::test]
async fn oauth_token_is_fetched_once_and_reused() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        TOKEN,
        Canned::json(
            200,
            json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"}),
        ),
    );
    server.on("POST", SUBMIT, succeeded("o1", json!([])));
    server.on("POST", SUBMIT, succeeded("o2", json!([])));
    let client = oauth_client(&server)?;
    for _ in 0..2 {
        ok_or_bail(
            client
                .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
                .await,
        )?;
    }
    assert_eq!(server.count("POST", TOKEN), 1);
    let requests = server.requests();
    let token_request = &requests[0];
    assert_eq!(token_request.path, TOKEN);
    assert_eq!(
        token_request.body,
        "grant_type=client_credentials&scope=all-apis"
    );
    assert_eq!(
        token_request
            .headers
            .get("content-type")
            .map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        token_request.headers.get("authorization"),
        Some(&format!("Basic {basic}"))
    );
    for r in requests.iter().filter(|r| r.path == SUBMIT) {
        assert_eq!(
            r.headers.get("authorization"),
            Some(&format!("Bearer {ACCESS_TOKEN}"))
        );
    }
    Ok(())
}

#[tokio::test]
async fn oauth_token_is_refreshed_after_expiry() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        TOKEN,
        Canned::json(200, json!({"access_token": "short-1", "expires_in": 1})),
    );
    server.on(
        "POST",
        TOKEN,
        Canned::json(
            200,
            json!({"access_token": "short-2", "expires_in": "3600"}),
        ),
    );
    server.always("POST", SUBMIT, succeeded("o3", json!([])));
    let client = oauth_client(&server)?;
    ok_or_bail(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    ok_or_bail(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert_eq!(server.count("POST", TOKEN), 1, "still fresh");
    pause(1000).await;
    ok_or_bail(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert_eq!(server.count("POST", TOKEN), 2);
    let auth: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path == SUBMIT)
        .filter_map(|r| r.headers.get("authorization").cloned())
        .collect();
    assert_eq!(auth, ["Bearer short-1", "Bearer short-1", "Bearer short-2"]);
    Ok(())
}

#[tokio::test]
async fn oauth_401_refreshes_the_token_once() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        TOKEN,
        Canned::json(200, json!({"access_token": "revoked", "expires_in": 3600})),
    );
    server.on(
        "POST",
        TOKEN,
        Canned::json(200, json!({"access_token": "fresh", "expires_in": 3600})),
    );
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            401,
            json!({"error_code": "UNAUTHENTICATED", "message": "token revoked"}),
        ),
    );
    server.on("POST", SUBMIT, succeeded("o4", json!([])));
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            401,
            json!({"error_code": "UNAUTHENTICATED", "message": "no"}),
        ),
    );
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            401,
            json!({"error_code": "UNAUTHENTICATED", "message": "no"}),
        ),
    );
    server.on(
        "POST",
        TOKEN,
        Canned::json(200, json!({"access_token": "fresher", "expires_in": 3600})),
    );
    let client = oauth_client(&server)?;
    let result = ok_or_bail(
        client
            .execute(
                "INSERT INTO t VALUES (1)",
                &[],
                Idempotency::Unsafe,
                in_secs(60),
            )
            .await,
    )?;
    assert_eq!(result.statement_id, "o4");
    let auth: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path == SUBMIT)
        .filter_map(|r| r.headers.get("authorization").cloned())
        .collect();
    assert_eq!(auth, ["Bearer revoked", "Bearer fresh"]);
    // A second 401 after the refresh is permanent: one refresh per request, no loop.
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert_eq!(e.http_status(), Some(401));
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(server.count("POST", TOKEN), 3);
    assert_eq!(server.count("POST", SUBMIT), 4);
    Ok(())
}

#[tokio::test]
async fn pat_401_is_permanent_without_refresh() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            401,
            json!({"error_code": "UNAUTHENTICATED", "message": "bad token"}),
        ),
    );
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert_eq!(e.http_status(), Some(401));
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn secrets_and_values_never_reach_errors_debug_or_logs() -> Result<()> {
    let logs = LogCapture::new();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("deltasink=trace"))
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    const VALUE: &str = "secret-customer-value-555";
    let params = [Param::new("v", Some(VALUE))];
    let mut errors: Vec<WarehouseError> = Vec::new();
    let mut debugs: Vec<String> = Vec::new();

    // PAT: a server that echoes the token in an error body and in a FAILED message.
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        Canned::text(500, &format!("rejected Authorization: Bearer {PAT}")),
    );
    server.on(
        "POST",
        SUBMIT,
        failed(
            "f1",
            "BAD_REQUEST",
            Some("42000"),
            &format!("bad token {PAT}"),
        ),
    );
    server.on("POST", SUBMIT, Canned::text(502, "bad gateway"));
    server.on("POST", SUBMIT, state("f2", "RUNNING"));
    server.always("GET", &statement("f2"), state("f2", "RUNNING"));
    server.on(
        "POST",
        &format!("{}/cancel", statement("f2")),
        Canned::text(503, "nope"),
    );
    let client = pat_client(&server)?;
    debugs.push(format!("{client:?}"));
    for (idempotency, deadline) in [
        (Idempotency::Safe, in_secs(60)),
        (Idempotency::Safe, in_secs(60)),
        (Idempotency::Unsafe, in_secs(60)),
        (
            Idempotency::Safe,
            Instant::now() + Duration::from_millis(500),
        ),
    ] {
        if let Err(e) = client
            .execute("SELECT :v", &params, idempotency, deadline)
            .await
        {
            errors.push(e);
        }
    }
    assert_eq!(errors.len(), 4, "{errors:?}");

    // OAuth: a rejected client, then a token endpoint that is down.
    let server = ScriptedServer::start().await?;
    server.on("POST", TOKEN, Canned::json(401, json!({"error": "invalid_client", "error_description": format!("bad secret {CLIENT_SECRET}")})));
    server.on(
        "POST",
        TOKEN,
        Canned::json(
            200,
            json!({"access_token": ACCESS_TOKEN, "expires_in": 3600}),
        ),
    );
    server.on(
        "POST",
        SUBMIT,
        Canned::text(403, &format!("token {ACCESS_TOKEN} may not use warehouse")),
    );
    let client = oauth_client(&server)?;
    if let Err(e) = client
        .execute("SELECT :v", &params, Idempotency::Safe, in_secs(60))
        .await
    {
        errors.push(e);
    }
    if let Err(e) = client
        .execute("SELECT :v", &params, Idempotency::Safe, in_secs(60))
        .await
    {
        errors.push(e);
    }
    debugs.push(format!("{client:?}"));
    assert_eq!(errors.len(), 6, "{errors:?}");

    // Settings errors from a JDBC URL with a password, and the settings themselves.
    let jdbc =
        format!("jdbc:databricks://h.net:443/default;PWD={PAT};httpPath=/sql/protocolv1/o/1/2");
    if let Err(e) = ConnectionSettings::parse(None, &jdbc) {
        errors.push(e.into());
    }
    let jdbc = format!(
        "jdbc:databricks://h.net:443/default;UID=token;PWD={PAT};httpPath=/sql/1.0/warehouses/w"
    );
    debugs.push(format!("{:?}", ConnectionSettings::parse(None, &jdbc)?));
    debugs.push(format!("{params:?}"));
    assert_eq!(errors.len(), 7);

    let log_text = logs.text();
    assert!(log_text.contains("statement_id"), "{log_text}");
    assert!(log_text.contains("f2"), "{log_text}");
    let mut texts: Vec<String> = debugs;
    for e in &errors {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
        texts.push(e.summary());
    }
    texts.push(log_text);
    for text in &texts {
        for secret in [PAT, CLIENT_SECRET, ACCESS_TOKEN, VALUE] {
            assert!(!text.contains(secret), "`{secret}` leaked into: {text}");
        }
    }
    // The errors still say what went wrong.
    assert!(
        errors[0].to_string().contains("<redacted>"),
        "{}",
        errors[0]
    );
    assert!(matches!(errors[1], WarehouseError::Failed { .. }));
    assert!(matches!(errors[2], WarehouseError::UnknownOutcome { .. }));
    assert!(matches!(
        errors[3],
        WarehouseError::Deadline {
            canceled: false,
            ..
        }
    ));
    assert_eq!(errors[4].http_status(), Some(401));
    assert_eq!(errors[4].error_code(), Some("invalid_client"));
    assert_eq!(errors[5].http_status(), Some(403));
    Ok(())
}
