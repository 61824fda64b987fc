//! The SQL warehouse: Databricks SQL Statement Execution API 2.0 over REST.
//!
//! - [`ConnectionSettings`] accepts the connection the way users copy it from the Databricks
//!   UI (server hostname + HTTP path, a JDBC URL, or a warehouse id) and refuses all-purpose
//!   cluster paths with a message saying what to use instead.
//! - [`Credentials`]: a personal access token, or OAuth machine-to-machine for a service
//!   principal (token cached, refreshed before expiry and once on a 401).
//! - [`WarehouseClient`] submits a statement (`POST /api/2.0/sql/statements`, inline
//!   `JSON_ARRAY` results), polls until a terminal state, follows result chunks, cancels
//!   when the deadline approaches, and retries transient failures with full-jitter backoff,
//!   re-submitting a statement only when the caller declared it [`Idempotency::Safe`].
//! - [`StatementExecutor`] is the narrow trait the load and maintain logic depend on;
//!   [`FakeExecutor`] scripts it in tests.
//!
//! Values never enter SQL text: they travel as named [`Param`]s (`:name` markers). Neither
//! tokens nor parameter values are ever logged or put into an error.

mod api;
mod auth;
mod client;
mod connection;
mod error;
mod fake;
mod retry;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::time::Instant;

pub use api::StatementState;
pub use auth::{Credentials, Secret};
pub use client::{ClientOptions, WarehouseClient};
pub use connection::{ConnectionSettings, Scheme};
pub use error::{
    ErrorClass, Operation, SettingsError, TransportKind, WarehouseError, classify_failure,
    classify_status, is_delta_conflict,
};
pub use fake::{FakeExecutor, RecordedStatement};
pub use retry::{Jitter, RetryPolicy};

/// Whether a statement may run more than once with the same effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Running it twice is harmless (`COPY INTO`, which skips files it already loaded; a
    /// `MERGE` guarded by versions; DDL with `IF NOT EXISTS`; queries). The client may
    /// re-submit it after any transient failure.
    Safe,
    /// Running it twice would duplicate its effect (a plain `INSERT`). The client re-submits
    /// it only when the warehouse certainly did not accept it (429/503 on submit, no
    /// connection); any other failure after it may have been received is an
    /// [`ErrorClass::UnknownOutcome`] error, and a FAILED statement is not re-submitted.
    Unsafe,
}

/// A named statement parameter, bound to a `:name` marker in the SQL text.
#[derive(Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// `None` is SQL NULL.
    pub value: Option<String>,
    /// A Databricks SQL type (`STRING` when absent): `BIGINT`, `DECIMAL(10,2)`,
    /// `TIMESTAMP`, …
    pub type_name: Option<String>,
}

impl Param {
    /// An untyped (STRING) parameter.
    pub fn new(name: impl Into<String>, value: Option<impl Into<String>>) -> Self {
        Param {
            name: name.into(),
            value: value.map(Into::into),
            type_name: None,
        }
    }

    pub fn typed(
        name: impl Into<String>,
        value: Option<impl Into<String>>,
        type_name: impl Into<String>,
    ) -> Self {
        Param {
            name: name.into(),
            value: value.map(Into::into),
            type_name: Some(type_name.into()),
        }
    }

    /// A typed NULL.
    pub fn null(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Param {
            name: name.into(),
            value: None,
            type_name: Some(type_name.into()),
        }
    }
}

/// Values are data: `Debug` shows only their length, so parameters can be logged safely.
impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match &self.value {
            Some(v) => format!("<{} bytes>", v.len()),
            None => "NULL".to_string(),
        };
        f.debug_struct("Param")
            .field("name", &self.name)
            .field("value", &format_args!("{value}"))
            .field("type_name", &self.type_name)
            .finish()
    }
}

/// The result of a statement that SUCCEEDED.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementResult {
    pub statement_id: String,
    /// `(name, type_name)` per column.
    pub columns: Vec<(String, String)>,
    /// Every row of every chunk, each value as the API's JSON_ARRAY string (`None` = NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// The manifest's total row count (the number of rows when it has none).
    pub row_count: u64,
}

impl StatementResult {
    /// The index of a column, matched case-insensitively.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The value of `column` in row `row` (`None` for NULL, a missing row or column).
    pub fn value(&self, row: usize, column: &str) -> Option<&str> {
        let index = self.column_index(column)?;
        self.rows.get(row)?.get(index)?.as_deref()
    }
}

/// Runs SQL statements. Implemented by [`WarehouseClient`]; [`FakeExecutor`] for tests.
pub trait StatementExecutor: Send + Sync {
    /// Runs `sql` with named `params`, finishing (or canceling it) before `deadline` (the
    /// Lambda deadline minus a safety margin). `idempotency` says whether the statement may
    /// be re-submitted after a failure that leaves its outcome open.
    ///
    /// Errors are classified by [`WarehouseError::class`]. A [`ErrorClass::Deadline`] error
    /// carries the statement id; the cancel is best effort, so the statement may still have
    /// committed. [`WarehouseError::Closed`] means the statement ran but its result is gone.
    fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> impl Future<Output = Result<StatementResult, WarehouseError>> + Send;
}

impl<T: StatementExecutor> StatementExecutor for &T {
    fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> impl Future<Output = Result<StatementResult, WarehouseError>> + Send {
        (**self).execute(sql, params, idempotency, deadline)
    }
}

impl<T: StatementExecutor> StatementExecutor for std::sync::Arc<T> {
    fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> impl Future<Output = Result<StatementResult, WarehouseError>> + Send {
        (**self).execute(sql, params, idempotency, deadline)
    }
}
