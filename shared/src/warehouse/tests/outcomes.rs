//! Statement outcomes: results, polling, chunks, parameters, terminal states, deadlines.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::*;

#[tokio::test]
async fn success_inline_with_pat_header_and_body() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on(
        "POST",
        SUBMIT,
        succeeded("s1", json!([["1", "a"], [null, "b"]])),
    );
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute("SELECT n, name FROM t", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert_eq!(result.statement_id, "s1");
    assert_eq!(
        result.columns,
        vec![("n".into(), "INT".into()), ("name".into(), "STRING".into())]
    );
    assert_eq!(
        result.rows,
        vec![
            vec![Some("1".to_string()), Some("a".to_string())],
            vec![None, Some("b".to_string())]
        ]
    );
    assert_eq!(result.row_count, 2);
    assert_eq!(result.value(1, "NAME"), Some("b"));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {PAT}"))
    );
    assert_eq!(
        r.json(),
        json!({
            "statement": "SELECT n, name FROM t",
            "warehouse_id": "wh1",
            "catalog": "main",
            "schema": "sales",
            "wait_timeout": "10s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY"
        })
    );
    Ok(())
}

#[tokio::test]
async fn running_then_polled_until_succeeded() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, state("s2", "PENDING"));
    server.on("GET", &statement("s2"), state("s2", "RUNNING"));
    server.on(
        "GET",
        &statement("s2"),
        succeeded("s2", json!([["7", "x"]])),
    );
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute("SELECT 7", &[], Idempotency::Unsafe, in_secs(60))
            .await,
    )?;
    assert_eq!(result.rows, vec![vec![Some("7".into()), Some("x".into())]]);
    assert_eq!(server.count("POST", SUBMIT), 1);
    assert_eq!(server.count("GET", &statement("s2")), 2);
    for r in server.requests() {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {PAT}"))
        );
    }
    Ok(())
}

#[tokio::test]
async fn failed_statement_carries_code_state_and_message() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, state("s6", "RUNNING"));
    server.on(
        "GET",
        &statement("s6"),
        failed(
            "s6",
            "BAD_REQUEST",
            Some("42P01"),
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`sales`.`nope` cannot be found.",
        ),
    );
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute("SELECT * FROM nope", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    let WarehouseError::Failed {
        ref statement_id,
        ref error_code,
        ref sql_state,
        ref message,
    } = e
    else {
        bail!("expected Failed, got {e:?}");
    };
    assert_eq!(statement_id, "s6");
    assert_eq!(error_code.as_deref(), Some("BAD_REQUEST"));
    assert_eq!(sql_state.as_deref(), Some("42P01"));
    assert!(message.starts_with("[TABLE_OR_VIEW_NOT_FOUND]"));
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(
        server.count("POST", SUBMIT),
        1,
        "permanent: not re-submitted"
    );
    Ok(())
}

#[tokio::test]
async fn closed_and_canceled_are_errors_with_the_statement_id() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, state("s10", "RUNNING"));
    server.on("GET", &statement("s10"), state("s10", "CLOSED"));
    server.on("POST", SUBMIT, state("s11", "CANCELED"));
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert!(
        matches!(e, WarehouseError::Closed { ref statement_id } if statement_id == "s10"),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    assert!(
        matches!(e, WarehouseError::Canceled { ref statement_id } if statement_id == "s11"),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Retriable);
    assert_eq!(
        server.count("POST", SUBMIT),
        2,
        "a canceled statement is not re-submitted"
    );
    Ok(())
}

#[tokio::test]
async fn deadline_while_running_cancels_and_reports_the_statement() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, state("s12", "RUNNING"));
    server.always("GET", &statement("s12"), state("s12", "RUNNING"));
    server.on(
        "POST",
        &format!("{}/cancel", statement("s12")),
        Canned::json(200, json!({})),
    );
    let client = WarehouseClient::new(
        settings(&server)?,
        Credentials::token(PAT)?,
        ClientOptions {
            cancel_margin: Duration::from_millis(500),
            ..fast_options()
        },
    )?;
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1200);
    let e = expect_err(
        client
            .execute("OPTIMIZE t", &[], Idempotency::Safe, deadline)
            .await,
    )?;
    assert!(
        matches!(e, WarehouseError::Deadline { statement_id: Some(ref id), canceled: true } if id == "s12"),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Deadline);
    // Polled until the cancel margin, and the cancel fits in the margin.
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(Instant::now() <= deadline + Duration::from_millis(50));
    assert_eq!(
        server.count("POST", &format!("{}/cancel", statement("s12"))),
        1
    );
    assert!(server.count("GET", &statement("s12")) >= 2);
    let submit = &server.requests()[0];
    assert_eq!(
        submit.json()["wait_timeout"],
        "0s",
        "no time for a synchronous wait"
    );
    Ok(())
}

#[tokio::test]
async fn deadline_already_passed_sends_nothing() -> Result<()> {
    let server = ScriptedServer::start().await?;
    let client = pat_client(&server)?;
    let e = expect_err(
        client
            .execute("SELECT 1", &[], Idempotency::Safe, Instant::now())
            .await,
    )?;
    assert!(
        matches!(
            e,
            WarehouseError::Deadline {
                statement_id: None,
                canceled: false
            }
        ),
        "{e:?}"
    );
    assert!(server.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn parameters_travel_in_the_body_not_in_the_text() -> Result<()> {
    let server = ScriptedServer::start().await?;
    server.on("POST", SUBMIT, succeeded("p1", json!([])));
    let client = pat_client(&server)?;
    let sql = "DELETE FROM t WHERE name = :name AND id = :id AND note IS :note";
    let params = [
        Param::new("name", Some("O'Brien'; DROP TABLE t; --")),
        Param::typed("id", Some("42"), "BIGINT"),
        Param::null("note", "STRING"),
    ];
    ok_or_bail(
        client
            .execute(sql, &params, Idempotency::Safe, in_secs(60))
            .await,
    )?;
    let body = server.requests()[0].json();
    assert_eq!(body["statement"], sql);
    assert_eq!(
        body["parameters"],
        json!([
            {"name": "name", "value": "O'Brien'; DROP TABLE t; --"},
            {"name": "id", "value": "42", "type": "BIGINT"},
            {"name": "note", "type": "STRING"}
        ])
    );
    let statement_text = body["statement"].as_str().unwrap_or_default();
    assert!(!statement_text.contains("O'Brien") && !statement_text.contains("42"));
    // Invalid names are refused before anything is sent.
    let e = expect_err(
        client
            .execute(
                "SELECT :x",
                &[Param::new("x;y", Some("1"))],
                Idempotency::Safe,
                in_secs(60),
            )
            .await,
    )?;
    assert!(matches!(e, WarehouseError::InvalidRequest { .. }));
    assert_eq!(server.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn further_result_chunks_are_fetched() -> Result<()> {
    let server = ScriptedServer::start().await?;
    let chunk = |i: u64| format!("{SUBMIT}/c1/result/chunks/{i}");
    server.on(
        "POST",
        SUBMIT,
        Canned::json(
            200,
            json!({
                "statement_id": "c1",
                "status": {"state": "SUCCEEDED"},
                "manifest": {
                    "schema": {"columns": [{"name": "v", "type_name": "STRING", "position": 0}]},
                    "total_chunk_count": 3, "total_row_count": 4
                },
                "result": {"chunk_index": 0, "data_array": [["a"], ["b"]], "next_chunk_index": 1,
                           "next_chunk_internal_link": chunk(1)}
            }),
        ),
    );
    server.on("GET", &chunk(1), Canned::text(503, "busy"));
    server.on(
        "GET",
        &chunk(1),
        Canned::json(
            200,
            json!({"chunk_index": 1, "data_array": [["c"]], "next_chunk_internal_link": chunk(2)}),
        ),
    );
    server.on(
        "GET",
        &chunk(2),
        Canned::json(200, json!({"chunk_index": 2, "data_array": [[null]]})),
    );
    let client = pat_client(&server)?;
    let result = ok_or_bail(
        client
            .execute("SELECT v", &[], Idempotency::Safe, in_secs(60))
            .await,
    )?;
    let values: Vec<Option<&str>> = result.rows.iter().map(|r| r[0].as_deref()).collect();
    assert_eq!(values, [Some("a"), Some("b"), Some("c"), None]);
    assert_eq!(result.row_count, 4);
    assert_eq!(server.count("POST", SUBMIT), 1);
    assert_eq!(server.count("GET", &chunk(1)), 2);
    Ok(())
}

#[tokio::test]
async fn fake_executor_scripts_results_and_records_calls() -> Result<()> {
    let fake = FakeExecutor::new();
    fake.push_err(WarehouseError::Canceled {
        statement_id: "x".into(),
    });
    async fn run<E: StatementExecutor>(e: &E) -> Result<StatementResult, WarehouseError> {
        e.execute(
            "SELECT :a",
            &[Param::new("a", Some("1"))],
            Idempotency::Safe,
            Instant::now(),
        )
        .await
    }
    assert!(run(&fake).await.is_err());
    assert_eq!(
        run(&&fake).await.map(|r| r.statement_id).ok(),
        Some("fake-2".to_string())
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].sql, "SELECT :a");
    assert_eq!(calls[0].idempotency, Idempotency::Safe);
    Ok(())
}
