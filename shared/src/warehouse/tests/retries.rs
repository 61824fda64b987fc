//! Retries and re-submission: HTTP statuses, transient failures, lost responses.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::*;

#[tokio::test]
async fn rate_limited_submit_honours_retry_after_even_when_unsafe() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            429,
            json!({"error_code": "TOO_MANY_REQUESTS", "message": "slow down"}),
        )
        .header("Retry-After", "1"),
    );
    server.on("POST", SUBMIT, succeeded("s3", json!([])));
    let client = pat_client(&server)?;
    let started = Instant::now();
    let result = ok_or_bail(
        client
            .execute(
                "INSERT INTO t SELECT 1",
                &[],
                Idempotency::Unsafe,
                in_secs(60),
            )
            .await,
    )?;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(result.statement_id, "s3");
    assert_eq!(result.row_count, 0);
    assert_eq!(server.count("POST", SUBMIT), 2);
    Ok(())
}

#[tokio::test]
async fn unavailable_503_then_success() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, Canned::text(503, "warehouse is starting"));
    server.on("POST", SUBMIT, succeeded("s4", json!([["1", "a"]])));
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute("SELECT 1", &[], Idempotency::Unsafe, in_secs(60))
            .await,
    )?;
    assert_eq!(result.statement_id, "s4");
    assert_eq!(server.count("POST", SUBMIT), 2);
    Ok(())
}

#[tokio::test]
async fn server_error_500_is_permanent_with_a_bounded_snippet() -> Result<()> {
    let server = ScriptedServer::start().await?;
    let message = format!("internal failure {}", "y".repeat(5000));
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            500,
            json!({"error_code": "INTERNAL_ERROR", "message": message}),
        ),
    );
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    let WarehouseError::Http {
        status,
        ref snippet,
        operation,
        ..
    } = e
    else {
        bail!("expected an HTTP error, got {e:?}");
    };
    assert_eq!(status, 500);
    assert_eq!(operation, Operation::Submit);
    assert!(snippet.contains("internal failure"), "{snippet}");
    assert!(snippet.chars().count() <= 513, "{}", snippet.len());
    assert_eq!(e.error_code(), Some("INTERNAL_ERROR"));
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(server.count("POST", SUBMIT), 1);
    Ok(())
}

#[tokio::test]
async fn http_4xx_are_permanent() -> Result<()> {
    for status in [400u16, 401, 403, 404] {
        let server = ScriptedServer::start().await?;
        server.on(
            "POST",
            SUBMIT,
            Canned::json(status, json!({"error_code": "X", "message": "no"})),
        );
        let client = pat_client(&server)?;
        let e = expect_err(
            client
                .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
                .await,
        )?;
        assert_eq!(e.http_status(), Some(status));
        assert_eq!(e.class(), ErrorClass::Permanent, "{status}");
        assert_eq!(server.count("POST", SUBMIT), 1, "{status}");
    }
    Ok(())
}

#[tokio::test]
async fn transient_failure_is_resubmitted_when_safe() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        failed(
            "s7a",
            "TEMPORARILY_UNAVAILABLE",
            None,
            "warehouse restarting",
        ),
    );
    server.on(
        "POST",
        SUBMIT,
        failed(
            "s7b",
            "BAD_REQUEST",
            Some("2D521"),
            "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added to the root of the table by a concurrent update.",
        ),
    );
    server.on("POST", SUBMIT, succeeded("s7c", json!([])));
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute(
                "COPY INTO t FROM 's3://b/k'",
                &[],
                Idempotency::Safe,
                in_secs(60),
            )
            .await,
    )?;
    assert_eq!(result.statement_id, "s7c");
    assert_eq!(server.count("POST", SUBMIT), 3);
    Ok(())
}

#[tokio::test]
async fn transient_failure_is_not_resubmitted_when_unsafe() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        failed(
            "s8",
            "TEMPORARILY_UNAVAILABLE",
            None,
            "warehouse restarting",
        ),
    );
    server.on("POST", SUBMIT, succeeded("never", json!([])));
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute(
                "INSERT INTO t VALUES (1)",
                &[],
                Idempotency::Unsafe,
                in_secs(60),
            )
            .await,
    )?;
    assert!(matches!(e, WarehouseError::Failed { .. }), "{e:?}");
    assert_eq!(e.error_code(), Some("TEMPORARILY_UNAVAILABLE"));
    assert_eq!(e.class(), ErrorClass::Retriable);
    assert_eq!(e.statement_id(), Some("s8"));
    assert_eq!(server.count("POST", SUBMIT), 1);
    Ok(())
}

#[tokio::test]
async fn poll_errors_are_retried_without_resubmitting() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, state("r1", "RUNNING"));
    server.on("GET", &statement("r1"), Canned::text(503, "unavailable"));
    server.on("GET", &statement("r1"), Canned::hang_up());
    server.on(
        "GET",
        &statement("r1"),
        Canned::json(429, json!({"error_code": "TOO_MANY_REQUESTS"})).header("Retry-After", "0"),
    );
    server.on(
        "GET",
        &statement("r1"),
        succeeded("r1", json!([["1", "a"]])),
    );
    let client = pat_client(&server)?;
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
    assert_eq!(result.statement_id, "r1");
    assert_eq!(server.count("POST", SUBMIT), 1);
    assert_eq!(server.count("GET", &statement("r1")), 4);
    Ok(())
}

#[tokio::test]
async fn lost_submit_response_is_unknown_outcome_when_unsafe_and_retried_when_safe() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, Canned::hang_up());
    server.on("POST", SUBMIT, succeeded("never", json!([])));
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute(
                "INSERT INTO t VALUES (1)",
                &[],
                Idempotency::Unsafe,
                in_secs(60),
            )
            .await,
    )?;
    assert!(matches!(e, WarehouseError::UnknownOutcome { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::UnknownOutcome);
    assert_eq!(server.count("POST", SUBMIT), 1);

    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, Canned::hang_up());
    server.on("POST", SUBMIT, succeeded("u2", json!([])));
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute(
                "MERGE INTO t USING s ON …",
                &[],
                Idempotency::Safe,
                in_secs(60),
            )
            .await,
    )?;
    assert_eq!(result.statement_id, "u2");
    assert_eq!(server.count("POST", SUBMIT), 2);
    Ok(())
}

#[tokio::test]
async fn gateway_errors_on_submit_are_unknown_outcome_when_unsafe() -> Result<()> {
    for status in [502u16, 504] {
        let server = ScriptedServer::start().await?;
        server.on("POST", SUBMIT, Canned::text(status, "<html>gateway</html>"));
        server.on("POST", SUBMIT, succeeded("g1", json!([])));
        let client = pat_client(&server)?;
        let e = expect_err(
            client
                .execute(
                    "INSERT INTO t VALUES (1)",
                    &[],
                    Idempotency::Unsafe,
                    in_secs(60),
                )
                .await,
        )?;
        assert_eq!(e.class(), ErrorClass::UnknownOutcome, "{status}");
        assert_eq!(e.http_status(), Some(status));
        assert_eq!(server.count("POST", SUBMIT), 1);
        let result = ok_or_bail(
            client
                .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
                .await,
        );
        // The queued success is consumed by the Safe statement's first submission.
        assert_eq!(result?.statement_id, "g1");
    }
    Ok(())
}

#[tokio::test]
async fn refused_connections_are_retried_even_when_unsafe() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let settings =
        ConnectionSettings::from_http_path(&format!("http://{addr}"), "/sql/1.0/warehouses/w")?;
    let client = WarehouseClient::new(settings, Credentials::token(PAT)?, fast_options())?;
    let e = expect_err(
        client
            .execute(
                "INSERT INTO t VALUES (1)",
                &[],
                Idempotency::Unsafe,
                in_secs(30),
            )
            .await,
    )?;
    assert!(
        matches!(
            e,
            WarehouseError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Retriable);
    Ok(())
}
