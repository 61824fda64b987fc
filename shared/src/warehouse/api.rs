//! The Statement Execution API 2.0 on the wire, pure: the request body, the response shapes,
//! and turning HTTP answers and transport failures into [`WarehouseError`]s.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Param;
use super::connection::ConnectionSettings;
use super::error::{Operation, TransportKind, WarehouseError};
use super::retry;

pub(crate) const STATEMENTS_PATH: &str = "/api/2.0/sql/statements";

/// At most this many characters of a response body are kept in an error.
pub(crate) const SNIPPET_CHARS: usize = 512;

#[derive(Serialize)]
struct WireParam<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_name: Option<&'a str>,
}

#[derive(Serialize)]
struct ExecuteRequest<'a> {
    statement: &'a str,
    warehouse_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parameters: Vec<WireParam<'a>>,
    wait_timeout: String,
    on_wait_timeout: &'static str,
    disposition: &'static str,
    format: &'static str,
}

/// The JSON body of `POST /api/2.0/sql/statements`. Parameter values travel only here,
/// never in the statement text.
pub(crate) fn execute_body(
    settings: &ConnectionSettings,
    sql: &str,
    params: &[Param],
    wait_timeout_secs: u64,
) -> Result<Vec<u8>, WarehouseError> {
    let request = ExecuteRequest {
        statement: sql,
        warehouse_id: settings.warehouse_id(),
        catalog: settings.catalog(),
        schema: settings.schema(),
        parameters: params
            .iter()
            .map(|p| WireParam {
                name: &p.name,
                value: p.value.as_deref(),
                type_name: p.type_name.as_deref().filter(|t| !t.trim().is_empty()),
            })
            .collect(),
        wait_timeout: format!("{wait_timeout_secs}s"),
        on_wait_timeout: "CONTINUE",
        disposition: "INLINE",
        format: "JSON_ARRAY",
    };
    serde_json::to_vec(&request).map_err(|e| WarehouseError::InvalidRequest {
        detail: format!("cannot encode the request: {e}"),
    })
}

/// Refuses requests the API would reject, before anything is sent.
pub(crate) fn validate_request(sql: &str, params: &[Param]) -> Result<(), WarehouseError> {
    if sql.trim().is_empty() {
        return Err(WarehouseError::InvalidRequest {
            detail: "the statement is empty".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for p in params {
        let valid = p
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(WarehouseError::InvalidRequest {
                detail: format!(
                    "parameter name `{}` is not a valid marker name (letters, digits, `_`)",
                    p.name.chars().take(64).collect::<String>()
                ),
            });
        }
        if !seen.insert(p.name.to_ascii_lowercase()) {
            return Err(WarehouseError::InvalidRequest {
                detail: format!("parameter `{}` is given twice", p.name),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatementResponse {
    pub statement_id: Option<String>,
    pub status: Option<Status>,
    pub manifest: Option<Manifest>,
    pub result: Option<ResultData>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Status {
    pub state: Option<String>,
    pub error: Option<ServiceError>,
    pub sql_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ServiceError {
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub sql_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Manifest {
    pub schema: Option<Schema>,
    pub total_row_count: Option<u64>,
    pub total_chunk_count: Option<u64>,
    pub truncated: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Schema {
    #[serde(default)]
    pub columns: Vec<Column>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Column {
    #[serde(default)]
    pub name: String,
    pub type_name: Option<String>,
    pub type_text: Option<String>,
    pub position: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResultData {
    pub data_array: Option<Vec<Vec<Value>>>,
    pub next_chunk_internal_link: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Option<String>,
    pub expires_in: Option<Value>,
}

/// A statement's execution state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Closed,
    /// A state this client does not know; treated as still running.
    Other(String),
}

impl StatementState {
    pub fn parse(state: &str) -> Self {
        match state {
            "PENDING" => StatementState::Pending,
            "RUNNING" => StatementState::Running,
            "SUCCEEDED" => StatementState::Succeeded,
            "FAILED" => StatementState::Failed,
            "CANCELED" => StatementState::Canceled,
            "CLOSED" => StatementState::Closed,
            other => StatementState::Other(other.to_string()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StatementState::Succeeded
                | StatementState::Failed
                | StatementState::Canceled
                | StatementState::Closed
        )
    }

    pub fn as_str(&self) -> &str {
        match self {
            StatementState::Pending => "PENDING",
            StatementState::Running => "RUNNING",
            StatementState::Succeeded => "SUCCEEDED",
            StatementState::Failed => "FAILED",
            StatementState::Canceled => "CANCELED",
            StatementState::Closed => "CLOSED",
            StatementState::Other(s) => s,
        }
    }
}

impl StatementResponse {
    pub(crate) fn state(&self) -> StatementState {
        StatementState::parse(
            self.status
                .as_ref()
                .and_then(|s| s.state.as_deref())
                .unwrap_or(""),
        )
    }

    /// The error of a FAILED statement.
    pub(crate) fn failure(
        &self,
        statement_id: &str,
        scrub: impl Fn(&str) -> String,
    ) -> WarehouseError {
        let status = self.status.as_ref();
        let error = status.and_then(|s| s.error.as_ref());
        WarehouseError::Failed {
            statement_id: statement_id.to_string(),
            error_code: error.and_then(|e| e.error_code.clone()),
            sql_state: status
                .and_then(|s| s.sql_state.clone())
                .or_else(|| error.and_then(|e| e.sql_state.clone())),
            message: error
                .and_then(|e| e.message.as_deref())
                .map(scrub)
                .unwrap_or_else(|| "(no message)".into()),
        }
    }

    /// `(name, type)` per column, in position order.
    pub(crate) fn columns(&self) -> Vec<(String, String)> {
        let mut columns: Vec<&Column> = self
            .manifest
            .as_ref()
            .and_then(|m| m.schema.as_ref())
            .map(|s| s.columns.iter().collect())
            .unwrap_or_default();
        columns.sort_by_key(|c| c.position.unwrap_or(u64::MAX));
        columns
            .into_iter()
            .map(|c| {
                let type_name = c
                    .type_name
                    .clone()
                    .or_else(|| c.type_text.clone())
                    .unwrap_or_default();
                (c.name.clone(), type_name)
            })
            .collect()
    }
}

/// JSON_ARRAY rows: strings and nulls (anything else is kept as its JSON text).
pub(crate) fn rows(data: Option<Vec<Vec<Value>>>) -> Vec<Vec<Option<String>>> {
    data.unwrap_or_default()
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                })
                .collect()
        })
        .collect()
}

/// Whether a statement id can go into a URL path as it is.
pub(crate) fn valid_statement_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A seconds value that may come as a number or a string.
pub(crate) fn json_seconds(v: &Value) -> Option<Duration> {
    let seconds = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
}

/// A bounded, single-line excerpt of a response body.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= SNIPPET_CHARS {
                out.push('…');
                return out;
            }
            out.push(if c.is_control() { '?' } else { c });
            chars += 1;
        }
    }
    if out.is_empty() {
        "(empty body)".into()
    } else {
        out
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    /// OAuth endpoints say `error`.
    error: Option<Value>,
}

/// The error for a non-success HTTP answer: status, the body's `error_code` when it is a
/// Databricks (or OAuth) error, a bounded snippet of the body, and `Retry-After` on 429/503.
pub(crate) fn http_error(
    operation: Operation,
    statement_id: Option<&str>,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    scrub: impl Fn(&str) -> String,
) -> WarehouseError {
    let error_code = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| {
            b.error_code.or(match b.error {
                Some(Value::String(s)) => Some(s),
                _ => None,
            })
        });
    WarehouseError::Http {
        operation,
        statement_id: statement_id.map(str::to_string),
        status,
        error_code: error_code.map(|c| scrub(&c).chars().take(64).collect()),
        snippet: scrub(&snippet(body)),
        retry_after: retry_after.filter(|_| matches!(status, 429 | 503)),
    }
}

/// A request that failed below HTTP. The detail is reqwest's cause chain without the URL.
pub(crate) fn transport_error(
    operation: Operation,
    statement_id: Option<&str>,
    error: &reqwest::Error,
    scrub: impl Fn(&str) -> String,
) -> WarehouseError {
    use std::error::Error as _;
    let kind = if error.is_connect() {
        TransportKind::Connect
    } else if error.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    };
    let head = error.to_string();
    let mut detail = head
        .split(" for url (")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    WarehouseError::Transport {
        operation,
        statement_id: statement_id.map(str::to_string),
        kind,
        detail: scrub(&detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        match ConnectionSettings::from_warehouse_id("h.net", "w1") {
            Ok(s) => s.with_catalog("main"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn body_has_every_field() -> anyhow::Result<()> {
        let params = [
            Param::typed("id", Some("42"), "BIGINT"),
            Param::new("name", None::<String>),
        ];
        let body: Value =
            serde_json::from_slice(&execute_body(&settings(), "SELECT :id", &params, 0)?)?;
        assert_eq!(
            body,
            serde_json::json!({
                "statement": "SELECT :id",
                "warehouse_id": "w1",
                "catalog": "main",
                "parameters": [
                    {"name": "id", "value": "42", "type": "BIGINT"},
                    {"name": "name"}
                ],
                "wait_timeout": "0s",
                "on_wait_timeout": "CONTINUE",
                "disposition": "INLINE",
                "format": "JSON_ARRAY"
            })
        );
        let body: Value = serde_json::from_slice(&execute_body(&settings(), "SELECT 1", &[], 30)?)?;
        assert!(body.get("parameters").is_none() && body.get("schema").is_none());
        assert_eq!(body["wait_timeout"], "30s");
        Ok(())
    }

    #[test]
    fn request_validation() {
        assert!(validate_request("  ", &[]).is_err());
        assert!(validate_request("SELECT 1", &[Param::new("a b", Some("x"))]).is_err());
        assert!(validate_request("SELECT 1", &[Param::new("1a", Some("x"))]).is_err());
        assert!(validate_request("SELECT 1", &[Param::new("", Some("x"))]).is_err());
        assert!(
            validate_request(
                "SELECT 1",
                &[Param::new("a", Some("x")), Param::new("A", Some("y"))]
            )
            .is_err()
        );
        assert!(validate_request("SELECT :_a1", &[Param::new("_a1", Some("x"))]).is_ok());
    }

    #[test]
    fn response_parsing() -> anyhow::Result<()> {
        let r: StatementResponse = serde_json::from_value(serde_json::json!({
            "statement_id": "s",
            "status": {"state": "SUCCEEDED"},
            "manifest": {"schema": {"columns": [
                {"name": "b", "type_name": "STRING", "position": 1},
                {"name": "a", "type_text": "DECIMAL(10,2)", "position": 0}
            ]}, "total_row_count": 2},
            "result": {"data_array": [["1.50", "x"], [null, 7]]}
        }))?;
        assert_eq!(r.state(), StatementState::Succeeded);
        assert_eq!(
            r.columns(),
            vec![
                ("a".to_string(), "DECIMAL(10,2)".to_string()),
                ("b".to_string(), "STRING".to_string())
            ]
        );
        assert_eq!(
            rows(r.result.and_then(|d| d.data_array)),
            vec![
                vec![Some("1.50".to_string()), Some("x".to_string())],
                vec![None, Some("7".to_string())]
            ]
        );
        assert_eq!(
            StatementState::parse("QUEUED"),
            StatementState::Other("QUEUED".into())
        );
        assert!(!StatementState::parse("QUEUED").is_terminal());
        Ok(())
    }

    #[test]
    fn snippets_are_bounded_single_lines() {
        assert_eq!(snippet(b"  a\n\n b\tc "), "a b c");
        assert_eq!(snippet(b""), "(empty body)");
        let long = "x".repeat(10_000);
        let s = snippet(long.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn http_errors_take_the_error_code() {
        let e = http_error(
            Operation::Submit,
            None,
            400,
            Some(Duration::from_secs(3)),
            br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}"#,
            str::to_string,
        );
        assert_eq!(e.error_code(), Some("INVALID_PARAMETER_VALUE"));
        assert_eq!(e.retry_after(), None, "Retry-After only on 429/503");
        let e = http_error(
            Operation::Token,
            None,
            401,
            None,
            br#"{"error":"invalid_client"}"#,
            str::to_string,
        );
        assert_eq!(e.error_code(), Some("invalid_client"));
    }
}
