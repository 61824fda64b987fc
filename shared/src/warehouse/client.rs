//! The Statement Execution API client: the only part of the warehouse module that does I/O.
//!
//! One `execute` is a loop of attempts. An attempt submits the statement (waiting up to
//! `wait_timeout` for it synchronously), polls with growing intervals until a terminal
//! state, and follows result chunks. Polls and chunk fetches retry their own transient
//! failures; the statement itself is re-submitted only when that cannot run it twice, or
//! when the caller declared it [`Idempotency::Safe`]. When the deadline approaches the
//! statement is canceled and a [`WarehouseError::Deadline`] carries its id.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use tracing::{debug, info, warn};

use super::api::{self, STATEMENTS_PATH, StatementResponse, StatementState};
use super::auth::{Authenticator, Credentials};
use super::connection::ConnectionSettings;
use super::error::{Operation, SettingsError, TransportKind, WarehouseError};
use super::retry::{self, Jitter, RetryPolicy};
use super::{Idempotency, Param, StatementExecutor, StatementResult};

/// Timing of the client. The defaults suit a Lambda function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long a submission waits for the statement synchronously (sent as
    /// `wait_timeout`, 5 to 50 s, shortened to fit the deadline; below 5 s the submission is
    /// asynchronous and the client polls).
    pub wait_timeout: Duration,
    /// Re-submission and per-request retry backoff.
    pub retry: RetryPolicy,
    /// First interval between polls; it doubles up to `poll_max`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// A running statement is canceled this long before the deadline (the cancel request
    /// itself must fit in this margin).
    pub cancel_margin: Duration,
    /// Timeout of one poll, chunk or cancel request (the deadline shortens it).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            wait_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            cancel_margin: Duration::from_secs(3),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A Databricks SQL warehouse client. Build it once (at cold start) and share it.
pub struct WarehouseClient {
    http: reqwest::Client,
    settings: ConnectionSettings,
    base_url: String,
    auth: Authenticator,
    options: ClientOptions,
    jitter: Jitter,
}

impl fmt::Debug for WarehouseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarehouseClient")
            .field("settings", &self.settings)
            .field("auth", &self.auth)
            .field("options", &self.options)
            .finish()
    }
}

/// An HTTP answer, body read.
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
}

/// How far a failed attempt got: this decides whether re-submitting may run it twice.
enum Failure {
    /// The warehouse certainly did not accept the statement.
    NotSubmitted(WarehouseError),
    /// The warehouse may have accepted it (the connection broke after sending, a gateway
    /// error).
    MaybeSubmitted(WarehouseError),
    /// The warehouse accepted it (we have its id).
    Submitted(WarehouseError),
}

enum GetError {
    /// The time ran out.
    Deadline,
    Failed(WarehouseError),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl WarehouseClient {
    pub fn new(
        settings: ConnectionSettings,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, WarehouseError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("deltasink/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SettingsError::HttpClient {
                detail: e.without_url().to_string(),
            })?;
        let base_url = settings.base_url();
        Ok(WarehouseClient {
            http,
            auth: Authenticator::new(credentials, &base_url),
            base_url,
            settings,
            options,
            jitter: Jitter::default(),
        })
    }

    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn cancel_at(&self, deadline: Instant) -> Instant {
        deadline
            .checked_sub(self.options.cancel_margin)
            .unwrap_or_else(Instant::now)
    }

    /// Runs one statement; see [`StatementExecutor::execute`].
    pub async fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> Result<StatementResult, WarehouseError> {
        api::validate_request(sql, params)?;
        let started = Instant::now();
        let max_attempts = self.options.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.attempt(sql, params, deadline, attempt).await {
                Ok(result) => {
                    info!(
                        statement_id = %result.statement_id,
                        state = "SUCCEEDED",
                        attempt,
                        duration_ms = millis(started.elapsed()),
                        row_count = result.row_count,
                        "statement succeeded"
                    );
                    return Ok(result);
                }
                Err(failure) => failure,
            };
            let (error, resubmit) = match failure {
                Failure::NotSubmitted(e) => {
                    let retriable = e.is_retriable();
                    (e, retriable)
                }
                Failure::MaybeSubmitted(e) => match idempotency {
                    Idempotency::Safe => {
                        let retriable = e.is_retriable();
                        (e, retriable)
                    }
                    Idempotency::Unsafe => (
                        WarehouseError::UnknownOutcome {
                            statement_id: e.statement_id().map(str::to_string),
                            cause: Box::new(e),
                        },
                        false,
                    ),
                },
                Failure::Submitted(e) => {
                    let retriable = idempotency == Idempotency::Safe
                        && matches!(e, WarehouseError::Failed { .. })
                        && e.is_retriable();
                    (e, retriable)
                }
            };
            let statement_id = error.statement_id().unwrap_or("-").to_string();
            if !resubmit || attempt >= max_attempts {
                warn!(
                    statement_id = %statement_id,
                    attempt,
                    duration_ms = millis(started.elapsed()),
                    class = ?error.class(),
                    error = %error.summary(),
                    "statement did not succeed"
                );
                return Err(error);
            }
            let delay = error
                .retry_after()
                .unwrap_or_else(|| self.options.retry.backoff(attempt, &self.jitter));
            if Instant::now() + delay >= self.cancel_at(deadline) {
                warn!(
                    statement_id = %statement_id,
                    attempt,
                    delay_ms = millis(delay),
                    error = %error.summary(),
                    "no time left before the deadline to try the statement again"
                );
                return Err(error);
            }
            warn!(
                statement_id = %statement_id,
                attempt,
                delay_ms = millis(delay),
                error = %error.summary(),
                "statement will be submitted again"
            );
            crate::metrics::note_retry();
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        sql: &str,
        params: &[Param],
        deadline: Instant,
        attempt: u32,
    ) -> Result<StatementResult, Failure> {
        let cancel_at = self.cancel_at(deadline);
        let now = Instant::now();
        if now >= cancel_at {
            return Err(Failure::NotSubmitted(WarehouseError::Deadline {
                statement_id: None,
                canceled: false,
            }));
        }
        let wait = retry::wait_timeout_secs(self.options.wait_timeout, cancel_at - now);
        let body =
            api::execute_body(&self.settings, sql, params, wait).map_err(Failure::NotSubmitted)?;
        let timeout = (Duration::from_secs(wait) + self.options.request_timeout)
            .min(deadline.saturating_duration_since(now));
        let url = format!("{}{STATEMENTS_PATH}", self.base_url);
        debug!(attempt, wait_timeout_s = wait, "submitting statement");

        let reply = self
            .call(
                Operation::Submit,
                None,
                Method::POST,
                &url,
                Some(Bytes::from(body)),
                timeout,
            )
            .await
            .map_err(|e| match &e {
                WarehouseError::Transport {
                    operation: Operation::Submit,
                    kind: TransportKind::Timeout | TransportKind::Other,
                    ..
                } => Failure::MaybeSubmitted(e),
                _ => Failure::NotSubmitted(e),
            })?;
        if !reply.status.is_success() {
            let error = self.http_error(Operation::Submit, None, &reply);
            return Err(match reply.status.as_u16() {
                // A gateway gave up waiting: the warehouse may have the statement.
                502 | 504 => Failure::MaybeSubmitted(error),
                // 429/503: not accepted. Anything else is permanent anyway.
                _ => Failure::NotSubmitted(error),
            });
        }
        let response = self
            .parse::<StatementResponse>(Operation::Submit, None, &reply.body)
            .map_err(Failure::Submitted)?;
        let statement_id = match response.statement_id.as_deref() {
            Some(id) if api::valid_statement_id(id) => id.to_string(),
            _ => {
                return Err(Failure::Submitted(WarehouseError::Protocol {
                    operation: Operation::Submit,
                    statement_id: None,
                    detail: "the response has no valid statement_id".into(),
                }));
            }
        };
        debug!(
            statement_id = %statement_id,
            attempt,
            state = response.state().as_str(),
            "statement submitted"
        );
        self.follow(&statement_id, response, deadline, attempt)
            .await
            .map_err(Failure::Submitted)
    }

    /// Polls until a terminal state, then collects the result or the error.
    async fn follow(
        &self,
        id: &str,
        mut response: StatementResponse,
        deadline: Instant,
        attempt: u32,
    ) -> Result<StatementResult, WarehouseError> {
        let cancel_at = self.cancel_at(deadline);
        let url = format!("{}{STATEMENTS_PATH}/{id}", self.base_url);
        let mut delay = self.options.poll_initial;
        let mut polls = 0u32;
        loop {
            let state = response.state();
            debug!(statement_id = %id, state = state.as_str(), attempt, polls, "statement state");
            match state {
                StatementState::Succeeded => return self.collect(id, response, deadline).await,
                StatementState::Failed => {
                    return Err(response.failure(id, |t| self.auth.scrub(t)));
                }
                StatementState::Canceled => {
                    return Err(WarehouseError::Canceled {
                        statement_id: id.to_string(),
                    });
                }
                StatementState::Closed => {
                    return Err(WarehouseError::Closed {
                        statement_id: id.to_string(),
                    });
                }
                StatementState::Pending | StatementState::Running | StatementState::Other(_) => {}
            }
            let now = Instant::now();
            if now >= cancel_at {
                return Err(self.cancel_for_deadline(id).await);
            }
            tokio::time::sleep(delay.min(cancel_at - now)).await;
            delay = delay.saturating_mul(2).min(self.options.poll_max);
            polls += 1;
            let body = match self.get(Operation::Poll, &url, id, cancel_at).await {
                Ok(body) => body,
                Err(GetError::Deadline) => return Err(self.cancel_for_deadline(id).await),
                Err(GetError::Failed(e)) => return Err(e),
            };
            response = self.parse(Operation::Poll, Some(id), &body)?;
        }
    }

    /// The rows of a SUCCEEDED statement: the inline first chunk and any further chunks.
    async fn collect(
        &self,
        id: &str,
        response: StatementResponse,
        deadline: Instant,
    ) -> Result<StatementResult, WarehouseError> {
        let columns = response.columns();
        let manifest = response.manifest.unwrap_or_default();
        let mut rows = Vec::new();
        let mut next = match response.result {
            Some(data) => {
                rows.extend(api::rows(data.data_array));
                data.next_chunk_internal_link
            }
            None if manifest.total_chunk_count.unwrap_or(0) > 0 => {
                Some(format!("{STATEMENTS_PATH}/{id}/result/chunks/0"))
            }
            None => None,
        };
        let chunk_limit = manifest.total_chunk_count.unwrap_or(100_000);
        let mut fetched = 0u64;
        while let Some(link) = next.take() {
            fetched += 1;
            let protocol = |detail: &str| WarehouseError::Protocol {
                operation: Operation::FetchChunk,
                statement_id: Some(id.to_string()),
                detail: detail.to_string(),
            };
            if !link.starts_with(&format!("{STATEMENTS_PATH}/{id}/")) {
                return Err(protocol("a result chunk link outside this statement"));
            }
            if fetched > chunk_limit {
                return Err(protocol("more result chunks than the manifest announced"));
            }
            let url = format!("{}{link}", self.base_url);
            let body = match self.get(Operation::FetchChunk, &url, id, deadline).await {
                Ok(body) => body,
                Err(GetError::Deadline) => {
                    return Err(WarehouseError::Deadline {
                        statement_id: Some(id.to_string()),
                        canceled: false,
                    });
                }
                Err(GetError::Failed(e)) => return Err(e),
            };
            let data: api::ResultData = self.parse(Operation::FetchChunk, Some(id), &body)?;
            rows.extend(api::rows(data.data_array));
            next = data.next_chunk_internal_link;
        }
        if manifest.truncated.unwrap_or(false) {
            warn!(statement_id = %id, "the warehouse truncated the statement's result");
        }
        let row_count = manifest.total_row_count.unwrap_or(rows.len() as u64);
        Ok(StatementResult {
            statement_id: id.to_string(),
            columns,
            rows,
            row_count,
        })
    }

    /// Asks the warehouse to cancel a statement.
    pub async fn cancel(&self, statement_id: &str) -> Result<(), WarehouseError> {
        if !api::valid_statement_id(statement_id) {
            return Err(WarehouseError::InvalidRequest {
                detail: "not a valid statement id".into(),
            });
        }
        let url = format!("{}{STATEMENTS_PATH}/{statement_id}/cancel", self.base_url);
        let timeout = self.options.cancel_margin.clamp(
            Duration::from_millis(200),
            self.options.request_timeout.max(Duration::from_millis(200)),
        );
        let reply = self
            .call(
                Operation::Cancel,
                Some(statement_id),
                Method::POST,
                &url,
                None,
                timeout,
            )
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.http_error(Operation::Cancel, Some(statement_id), &reply))
        }
    }

    async fn cancel_for_deadline(&self, id: &str) -> WarehouseError {
        let canceled = match self.cancel(id).await {
            Ok(()) => true,
            Err(e) => {
                warn!(statement_id = %id, error = %e.summary(), "cancel failed");
                false
            }
        };
        warn!(statement_id = %id, canceled, "deadline approaching: statement canceled");
        WarehouseError::Deadline {
            statement_id: Some(id.to_string()),
            canceled,
        }
    }

    /// A GET that retries its own transient failures until `until`.
    async fn get(
        &self,
        operation: Operation,
        url: &str,
        id: &str,
        until: Instant,
    ) -> Result<Bytes, GetError> {
        let mut failures = 0;
        loop {
            let now = Instant::now();
            if now >= until {
                return Err(GetError::Deadline);
            }
            let timeout = self.options.request_timeout.min(until - now);
            let error = match self
                .call(operation, Some(id), Method::GET, url, None, timeout)
                .await
            {
                Ok(reply) if reply.status.is_success() => return Ok(reply.body),
                Ok(reply) => self.http_error(operation, Some(id), &reply),
                Err(e) => e,
            };
            if !error.is_retriable() {
                return Err(GetError::Failed(error));
            }
            failures += 1;
            let delay = error
                .retry_after()
                .unwrap_or_else(|| self.options.retry.backoff(failures, &self.jitter));
            if Instant::now() + delay >= until {
                return Err(GetError::Deadline);
            }
            warn!(
                statement_id = %id,
                operation = %operation,
                failures,
                delay_ms = millis(delay),
                error = %error.summary(),
                "request will be retried"
            );
            crate::metrics::note_retry();
            tokio::time::sleep(delay).await;
        }
    }

    /// One authorized request, its body read. A 401 with OAuth credentials fetches a new
    /// token and sends the request once more (a rejected request was not executed).
    async fn call(
        &self,
        operation: Operation,
        statement_id: Option<&str>,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Reply, WarehouseError> {
        let started = Instant::now();
        let mut refreshed = false;
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let token = self
                .auth
                .bearer(&self.http, left.min(self.options.request_timeout))
                .await?;
            let left = timeout.saturating_sub(started.elapsed());
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(left);
            request = match &body {
                Some(b) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone()),
                None if method == Method::POST => request.body(Bytes::new()),
                None => request,
            };
            let transport = |e: reqwest::Error| {
                api::transport_error(operation, statement_id, &e, |t| self.auth.scrub(t))
            };
            let response = request.send().await.map_err(transport)?;
            let status = response.status();
            let retry_after = api::retry_after(response.headers());
            let bytes = response.bytes().await.map_err(transport)?;
            if status == StatusCode::UNAUTHORIZED && self.auth.refreshable() && !refreshed {
                warn!(operation = %operation, "the warehouse refused the OAuth token: fetching a new one");
                self.auth.invalidate(&token);
                refreshed = true;
                continue;
            }
            return Ok(Reply {
                status,
                retry_after,
                body: bytes,
            });
        }
    }

    fn http_error(
        &self,
        operation: Operation,
        statement_id: Option<&str>,
        reply: &Reply,
    ) -> WarehouseError {
        api::http_error(
            operation,
            statement_id,
            reply.status.as_u16(),
            reply.retry_after,
            &reply.body,
            |t| self.auth.scrub(t),
        )
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        operation: Operation,
        statement_id: Option<&str>,
        body: &[u8],
    ) -> Result<T, WarehouseError> {
        // serde's message may quote the data; keep only its category and position.
        serde_json::from_slice(body).map_err(|e| WarehouseError::Protocol {
            operation,
            statement_id: statement_id.map(str::to_string),
            detail: format!(
                "not the expected JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    }
}

impl StatementExecutor for WarehouseClient {
    fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        deadline: Instant,
    ) -> impl Future<Output = Result<StatementResult, WarehouseError>> + Send {
        WarehouseClient::execute(self, sql, params, idempotency, deadline)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod retry_count_tests {
    use serde_json::json;

    use super::super::Credentials;
    use super::super::test_server::{Canned, ScriptedServer};
    use super::*;

    const SUBMIT: &str = "/api/2.0/sql/statements";

    fn options() -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy {
                base: Duration::from_millis(5),
                cap: Duration::from_millis(20),
                max_attempts: 4,
            },
            poll_initial: Duration::from_millis(5),
            poll_max: Duration::from_millis(20),
            cancel_margin: Duration::from_millis(200),
            ..ClientOptions::default()
        }
    }

    fn state(id: &str, state: &str) -> Canned {
        Canned::json(
            200,
            json!({"statement_id": id, "status": {"state": state},
                   "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 0, "columns": []},
                                "total_chunk_count": 0, "total_row_count": 0}}),
        )
    }

    #[tokio::test]
    async fn metrics_count_resubmissions_and_retried_polls() {
        let server = ScriptedServer::start().await.unwrap();
        // One re-submission (503 on submit), then one retried poll (503 on the poll).
        server.on("POST", SUBMIT, Canned::text(503, "starting"));
        server.on("POST", SUBMIT, state("s1", "RUNNING"));
        server.on("GET", &format!("{SUBMIT}/s1"), Canned::text(503, "busy"));
        server.on("GET", &format!("{SUBMIT}/s1"), state("s1", "SUCCEEDED"));
        let settings =
            ConnectionSettings::from_http_path(&server.base_url(), "/sql/1.0/warehouses/wh1")
                .unwrap();
        let client =
            WarehouseClient::new(settings, Credentials::token("dapi-x").unwrap(), options())
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (result, retries) = crate::metrics::count_retries(client.execute(
            "SELECT 1",
            &[],
            Idempotency::Safe,
            deadline,
        ))
        .await;
        assert_eq!(result.unwrap().statement_id, "s1");
        assert_eq!(retries, 2);
        // Without a counting scope the client works the same and counts nothing.
        server.on("POST", SUBMIT, state("s2", "SUCCEEDED"));
        let (_, retries) = crate::metrics::count_retries(async {}).await;
        assert_eq!(retries, 0);
        assert!(
            client
                .execute("SELECT 2", &[], Idempotency::Safe, deadline)
                .await
                .is_ok()
        );
    }
}
