//! Warehouse errors and their classification: retriable, permanent, deadline, unknown
//! outcome. Every message is built from fields that never hold a secret (tokens and client
//! secrets are scrubbed from server text before it is stored) nor a parameter value.

use std::fmt;
use std::time::Duration;

/// What a caller may do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: trying again later (or re-running a statement declared safe to repeat) may
    /// succeed. The client already retried within its budget; the invocation should fail so
    /// that its trigger retries it.
    Retriable,
    /// Trying again will not help: bad SQL, a missing table, bad credentials, no access.
    Permanent,
    /// The time budget ran out; any statement still running was asked to cancel.
    Deadline,
    /// A statement not declared safe to repeat may or may not have run: it must not be
    /// re-submitted blindly (check the table state, or let an operator decide).
    UnknownOutcome,
}

/// The request that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Submit,
    Poll,
    FetchChunk,
    Cancel,
    Token,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Submit => "submit statement",
            Operation::Poll => "poll statement",
            Operation::FetchChunk => "fetch result chunk",
            Operation::Cancel => "cancel statement",
            Operation::Token => "fetch OAuth token",
        })
    }
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection was made: the request was certainly not received.
    Connect,
    /// The request timed out: it may have been received.
    Timeout,
    /// The connection broke after the request was (perhaps) sent.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connection",
            TransportKind::Timeout => "timeout",
            TransportKind::Other => "transport",
        })
    }
}

/// A connection setting that cannot be used. Messages name the offending part but never echo
/// a whole JDBC URL nor any credential property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the server hostname is missing")]
    MissingHost,
    #[error(
        "host `{host}`: unsupported scheme `{scheme}://`; use https:// (http:// only for 127.0.0.1 or localhost)"
    )]
    UnsupportedScheme { host: String, scheme: String },
    #[error("host `{host}`: {problem}")]
    InvalidHost { host: String, problem: &'static str },
    #[error(
        "host `{host}` has a path `{path}`: give the server hostname only and the HTTP path separately"
    )]
    HostHasPath { host: String, path: String },
    #[error(
        "host must not carry credentials (`user:password@`): pass the token or OAuth secret separately"
    )]
    HostHasCredentials,
    #[error(
        "host `{host}`: http:// is allowed only for loopback hosts (127.0.0.1, localhost); use https://"
    )]
    InsecureHost { host: String },
    #[error(
        "the HTTP path is missing: use /sql/1.0/warehouses/<id> from the warehouse's Connection details"
    )]
    MissingHttpPath,
    #[error(
        "HTTP path `{http_path}` is an all-purpose cluster; the Statement Execution API needs a SQL warehouse: use the HTTP path /sql/1.0/warehouses/<id> from the warehouse's Connection details"
    )]
    AllPurposeCluster { http_path: String },
    #[error(
        "HTTP path `{http_path}` is not a SQL warehouse path: expected /sql/1.0/warehouses/<id>"
    )]
    NotAWarehousePath { http_path: String },
    #[error("warehouse id `{id}`: {problem}")]
    InvalidWarehouseId { id: String, problem: &'static str },
    #[error(
        "not a Databricks JDBC URL: expected jdbc:databricks://<host>:443/...;httpPath=/sql/1.0/warehouses/<id> (or jdbc:spark://)"
    )]
    NotJdbcUrl,
    #[error("JDBC URL: the `{key}` property is missing")]
    MissingJdbcProperty { key: &'static str },
    #[error("JDBC URL: property `{key}`: {problem}")]
    InvalidJdbcProperty { key: String, problem: String },
    #[error("the host `{host}` differs from the JDBC URL's host `{jdbc_host}`")]
    HostMismatch { host: String, jdbc_host: String },
    #[error("{what} is empty")]
    EmptyCredential { what: &'static str },
    #[error("cannot build the HTTP client: {detail}")]
    HttpClient { detail: String },
}

/// A failure talking to the SQL warehouse or running a statement on it.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("warehouse settings: {0}")]
    Settings(#[from] SettingsError),

    /// The request was refused before anything was sent (empty SQL, bad parameter name).
    #[error("invalid statement request: {detail}")]
    InvalidRequest { detail: String },

    /// The server answered with an HTTP error. `snippet` is a bounded, secret-free excerpt of
    /// the body; headers are never kept.
    #[error("{operation}{}: HTTP {status}{}: {snippet}", for_statement(.statement_id), code_suffix(.error_code))]
    Http {
        operation: Operation,
        statement_id: Option<String>,
        status: u16,
        /// `error_code` of a Databricks error body, when the body is one.
        error_code: Option<String>,
        snippet: String,
        /// `Retry-After` of a 429 or 503.
        retry_after: Option<Duration>,
    },

    #[error("{operation}{}: {kind} error: {detail}", for_statement(.statement_id))]
    Transport {
        operation: Operation,
        statement_id: Option<String>,
        kind: TransportKind,
        detail: String,
    },

    /// The statement reached the FAILED state.
    #[error("statement {statement_id} failed{}{}: {message}", code_suffix(.error_code), sql_state_suffix(.sql_state))]
    Failed {
        statement_id: String,
        error_code: Option<String>,
        sql_state: Option<String>,
        message: String,
    },

    /// The statement was canceled by someone else (or the warehouse).
    #[error("statement {statement_id} was canceled")]
    Canceled { statement_id: String },

    /// The statement ran successfully but was closed: its result is no longer available.
    #[error("statement {statement_id} is closed: it ran, but its result is no longer available")]
    Closed { statement_id: String },

    /// The deadline came before the statement finished.
    #[error("deadline reached{}{}", for_statement(.statement_id), if *.canceled { "; the statement was canceled" } else { "" })]
    Deadline {
        statement_id: Option<String>,
        /// Whether a cancel request was sent and accepted.
        canceled: bool,
    },

    /// A statement not declared safe to repeat may have been received before the failure.
    #[error("outcome unknown{}: the warehouse may have received the statement before the failure, and it is not declared safe to repeat: {cause}", for_statement(.statement_id))]
    UnknownOutcome {
        statement_id: Option<String>,
        #[source]
        cause: Box<WarehouseError>,
    },

    /// The server's answer could not be understood.
    #[error("{operation}{}: unexpected response: {detail}", for_statement(.statement_id))]
    Protocol {
        operation: Operation,
        statement_id: Option<String>,
        detail: String,
    },
}

fn for_statement(id: &Option<String>) -> String {
    id.as_deref()
        .map(|id| format!(" (statement {id})"))
        .unwrap_or_default()
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" [{c}]"))
        .unwrap_or_default()
}

fn sql_state_suffix(state: &Option<String>) -> String {
    state
        .as_deref()
        .map(|s| format!(" (SQLSTATE {s})"))
        .unwrap_or_default()
}

/// `error_code`s of a FAILED statement that are worth trying again.
const TRANSIENT_ERROR_CODES: &[&str] = &[
    "TEMPORARILY_UNAVAILABLE",
    "WORKSPACE_TEMPORARILY_UNAVAILABLE",
    "RESOURCE_EXHAUSTED",
    "SERVICE_UNDER_MAINTENANCE",
];

/// Delta optimistic-concurrency conflicts: the exception class names and Delta error
/// classes. Any `DELTA_CONCURRENT_*` error class is a conflict too.
const DELTA_CONFLICTS: &[&str] = &[
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
];

/// Whether the text names a Delta concurrent-modification conflict. Matches whole words
/// (`[A-Za-z0-9_]` runs), so `io.delta.exceptions.ConcurrentAppendException` and
/// `[DELTA_CONCURRENT_APPEND]` match while a column named `my_ConcurrentAppendExceptionX`
/// does not.
pub fn is_delta_conflict(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word.starts_with("DELTA_CONCURRENT_") || DELTA_CONFLICTS.contains(&word))
}

/// The class of an HTTP status from the Statement Execution API or the token endpoint.
pub fn classify_status(status: u16) -> ErrorClass {
    match status {
        429 | 502 | 503 | 504 => ErrorClass::Retriable,
        _ => ErrorClass::Permanent,
    }
}

/// The class of a FAILED statement.
pub fn classify_failure(
    error_code: Option<&str>,
    sql_state: Option<&str>,
    message: &str,
) -> ErrorClass {
    let transient_code = error_code.is_some_and(|c| TRANSIENT_ERROR_CODES.contains(&c));
    // SQLSTATE class 40: transaction rollback (serialization failure, commit conflict).
    let rollback_state = sql_state.is_some_and(|s| s.starts_with("40"));
    if transient_code
        || rollback_state
        || is_delta_conflict(message)
        || error_code.is_some_and(is_delta_conflict)
    {
        ErrorClass::Retriable
    } else {
        ErrorClass::Permanent
    }
}

impl WarehouseError {
    pub fn class(&self) -> ErrorClass {
        match self {
            WarehouseError::Settings(_)
            | WarehouseError::InvalidRequest { .. }
            | WarehouseError::Protocol { .. }
            | WarehouseError::Closed { .. } => ErrorClass::Permanent,
            WarehouseError::Http { status, .. } => classify_status(*status),
            WarehouseError::Transport { .. } | WarehouseError::Canceled { .. } => {
                ErrorClass::Retriable
            }
            WarehouseError::Failed {
                error_code,
                sql_state,
                message,
                ..
            } => classify_failure(error_code.as_deref(), sql_state.as_deref(), message),
            WarehouseError::Deadline { .. } => ErrorClass::Deadline,
            WarehouseError::UnknownOutcome { .. } => ErrorClass::UnknownOutcome,
        }
    }

    pub fn is_retriable(&self) -> bool {
        self.class() == ErrorClass::Retriable
    }

    pub fn statement_id(&self) -> Option<&str> {
        match self {
            WarehouseError::Http { statement_id, .. }
            | WarehouseError::Transport { statement_id, .. }
            | WarehouseError::Deadline { statement_id, .. }
            | WarehouseError::UnknownOutcome { statement_id, .. }
            | WarehouseError::Protocol { statement_id, .. } => statement_id.as_deref(),
            WarehouseError::Failed { statement_id, .. }
            | WarehouseError::Canceled { statement_id }
            | WarehouseError::Closed { statement_id } => Some(statement_id),
            WarehouseError::Settings(_) | WarehouseError::InvalidRequest { .. } => None,
        }
    }

    /// The Databricks `error_code` (of a FAILED statement or an HTTP error body).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            WarehouseError::Failed { error_code, .. } | WarehouseError::Http { error_code, .. } => {
                error_code.as_deref()
            }
            WarehouseError::UnknownOutcome { cause, .. } => cause.error_code(),
            _ => None,
        }
    }

    pub fn sql_state(&self) -> Option<&str> {
        match self {
            WarehouseError::Failed { sql_state, .. } => sql_state.as_deref(),
            _ => None,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            WarehouseError::Http { status, .. } => Some(*status),
            WarehouseError::UnknownOutcome { cause, .. } => cause.http_status(),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WarehouseError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short description without any server-provided free text (which may quote data):
    /// safe for logs and metrics.
    pub fn summary(&self) -> String {
        match self {
            WarehouseError::Settings(_) => "settings".into(),
            WarehouseError::InvalidRequest { .. } => "invalid request".into(),
            WarehouseError::Http {
                operation,
                status,
                error_code,
                ..
            } => format!("{operation}: HTTP {status}{}", code_suffix(error_code)),
            WarehouseError::Transport {
                operation, kind, ..
            } => format!("{operation}: {kind} error"),
            WarehouseError::Failed {
                error_code,
                sql_state,
                ..
            } => format!(
                "statement failed{}{}",
                code_suffix(error_code),
                sql_state_suffix(sql_state)
            ),
            WarehouseError::Canceled { .. } => "statement canceled".into(),
            WarehouseError::Closed { .. } => "statement closed".into(),
            WarehouseError::Deadline { canceled, .. } => {
                format!("deadline (canceled: {canceled})")
            }
            WarehouseError::UnknownOutcome { cause, .. } => {
                format!("unknown outcome after {}", cause.summary())
            }
            WarehouseError::Protocol { operation, .. } => {
                format!("{operation}: unexpected response")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: Option<&str>, state: Option<&str>, message: &str) -> WarehouseError {
        WarehouseError::Failed {
            statement_id: "s1".into(),
            error_code: code.map(str::to_string),
            sql_state: state.map(str::to_string),
            message: message.into(),
        }
    }

    #[test]
    fn http_status_table() {
        for s in [429, 502, 503, 504] {
            assert_eq!(classify_status(s), ErrorClass::Retriable, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 500] {
            assert_eq!(classify_status(s), ErrorClass::Permanent, "{s}");
        }
    }

    #[test]
    fn failed_statement_table() {
        let retriable = [
            failed(
                Some("TEMPORARILY_UNAVAILABLE"),
                None,
                "warehouse restarting",
            ),
            failed(Some("RESOURCE_EXHAUSTED"), None, "too many queries"),
            failed(
                Some("BAD_REQUEST"),
                None,
                "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added",
            ),
            failed(
                None,
                None,
                "io.delta.exceptions.ConcurrentDeleteReadException: This transaction",
            ),
            failed(
                None,
                None,
                "ConcurrentDeleteDeleteException: deleted by a concurrent update",
            ),
            failed(None, None, "ConcurrentTransactionException"),
            failed(None, None, "MetadataChangedException: The metadata changed"),
            failed(None, None, "ProtocolChangedException: protocol changed"),
            failed(None, None, "[DELTA_CONCURRENT_WRITE] something"),
            failed(None, Some("40000"), "commit failed after retries"),
            failed(None, Some("40001"), "serialization failure"),
        ];
        for e in &retriable {
            assert_eq!(e.class(), ErrorClass::Retriable, "{e}");
        }
        let permanent = [
            failed(
                Some("BAD_REQUEST"),
                Some("42601"),
                "[PARSE_SYNTAX_ERROR] Syntax error",
            ),
            failed(
                Some("BAD_REQUEST"),
                Some("42P01"),
                "[TABLE_OR_VIEW_NOT_FOUND] The table `x` cannot be found",
            ),
            failed(None, None, "column my_ConcurrentAppendExceptionX not found"),
            failed(Some("DEADLINE_EXCEEDED"), None, "statement timeout"),
        ];
        for e in &permanent {
            assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
        }
    }

    #[test]
    fn other_variants() {
        let transport = WarehouseError::Transport {
            operation: Operation::Poll,
            statement_id: Some("s".into()),
            kind: TransportKind::Connect,
            detail: "refused".into(),
        };
        assert!(transport.is_retriable());
        let deadline = WarehouseError::Deadline {
            statement_id: Some("s".into()),
            canceled: true,
        };
        assert_eq!(deadline.class(), ErrorClass::Deadline);
        assert_eq!(deadline.statement_id(), Some("s"));
        assert_eq!(
            deadline.to_string(),
            "deadline reached (statement s); the statement was canceled"
        );
        let unknown = WarehouseError::UnknownOutcome {
            statement_id: None,
            cause: Box::new(transport),
        };
        assert_eq!(unknown.class(), ErrorClass::UnknownOutcome);
        assert_eq!(
            WarehouseError::Closed {
                statement_id: "s".into()
            }
            .class(),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn messages_carry_context() {
        let e = failed(Some("BAD_REQUEST"), Some("42601"), "Syntax error");
        assert_eq!(
            e.to_string(),
            "statement s1 failed [BAD_REQUEST] (SQLSTATE 42601): Syntax error"
        );
        assert_eq!(
            e.summary(),
            "statement failed [BAD_REQUEST] (SQLSTATE 42601)"
        );
        let h = WarehouseError::Http {
            operation: Operation::Submit,
            statement_id: None,
            status: 500,
            error_code: Some("INTERNAL_ERROR".into()),
            snippet: "boom".into(),
            retry_after: None,
        };
        assert_eq!(
            h.to_string(),
            "submit statement: HTTP 500 [INTERNAL_ERROR]: boom"
        );
    }
}
