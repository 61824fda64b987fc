//! The client against a scripted HTTP server on 127.0.0.1.

mod auth;
mod outcomes;
mod retries;

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use super::test_server::{Canned, ScriptedServer, pause};
use super::*;

const SUBMIT: &str = "/api/2.0/sql/statements";
const TOKEN: &str = "/oidc/v1/token";
const PAT: &str = "dapi-PAT-0123456789abcdef";
const CLIENT_ID: &str = "sp-client-id";
const CLIENT_SECRET: &str = "dose-CLIENT-SECRET-987";
const ACCESS_TOKEN: &str = "eyJ-ACCESS-TOKEN-1";

fn statement(id: &str) -> String {
    format!("{SUBMIT}/{id}")
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        wait_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            max_attempts: 4,
        },
        poll_initial: Duration::from_millis(10),
        poll_max: Duration::from_millis(40),
        cancel_margin: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
    }
}

fn settings(server: &ScriptedServer) -> Result<ConnectionSettings> {
    Ok(
        ConnectionSettings::from_http_path(&server.base_url(), "/sql/1.0/warehouses/wh1")?
            .with_catalog("main")
            .with_schema("sales"),
    )
}

fn pat_client(server: &ScriptedServer) -> Result<WarehouseClient> {
    Ok(WarehouseClient::new(
        settings(server)?,
        Credentials::token(PAT)?,
        fast_options(),
    )?)
}

fn oauth_client(server: &ScriptedServer) -> Result<WarehouseClient> {
    Ok(WarehouseClient::new(
        settings(server)?,
        Credentials::oauth_m2m(CLIENT_ID, CLIENT_SECRET)?,
        fast_options(),
    )?)
}

fn in_secs(s: u64) -> Instant {
    Instant::now() + Duration::from_secs(s)
}

fn state(id: &str, state: &str) -> Canned {
    Canned::json(200, json!({"statement_id": id, "status": {"state": state}}))
}

fn succeeded(id: &str, rows: Value) -> Canned {
    let n = rows.as_array().map_or(0, Vec::len);
    Canned::json(
        200,
        json!({
            "statement_id": id,
            "status": {"state": "SUCCEEDED"},
            "manifest": {
                "format": "JSON_ARRAY",
                "schema": {"column_count": 2, "columns": [
                    {"name": "n", "type_name": "INT", "type_text": "INT", "position": 0},
                    {"name": "name", "type_name": "STRING", "type_text": "STRING", "position": 1}
                ]},
                "total_chunk_count": 1,
                "total_row_count": n
            },
            "result": {"chunk_index": 0, "row_offset": 0, "row_count": n, "data_array": rows}
        }),
    )
}

fn failed(id: &str, code: &str, sql_state: Option<&str>, message: &str) -> Canned {
    let mut status = json!({"state": "FAILED", "error": {"error_code": code, "message": message}});
    if let Some(s) = sql_state {
        status["sql_state"] = json!(s);
    }
    Canned::json(200, json!({"statement_id": id, "status": status}))
}

fn ok_or_bail(r: Result<StatementResult, WarehouseError>) -> Result<StatementResult> {
    r.map_err(|e| anyhow!("unexpected error: {e}"))
}

fn expect_err(r: Result<StatementResult, WarehouseError>) -> Result<WarehouseError> {
    match r {
        Ok(r) => bail!("expected an error, got {r:?}"),
        Err(e) => Ok(e),
    }
}
