//! Checks 3 and 4: the warehouse answers `SELECT 1`; the catalog and schema are usable.

use std::time::Instant;

use super::{CheckInputs, CheckResult, names, short};
use crate::sql::quote_ident;
use crate::warehouse::{
    Credentials, Idempotency, Operation, StatementExecutor, TransportKind, WarehouseError,
};

pub(super) async fn check_warehouse_and_schema<S, E: StatementExecutor>(
    inputs: &CheckInputs<'_, S, E>,
) -> (CheckResult, CheckResult) {
    let Some(warehouse) = inputs.warehouse else {
        let why = "not run: no usable warehouse settings (see configuration)";
        return (
            CheckResult::not_run(names::WAREHOUSE, why),
            CheckResult::not_run(names::CATALOG_SCHEMA, why),
        );
    };
    let label = inputs
        .connection
        .map(|c| format!("warehouse {} at {}", c.warehouse_id(), c.base_url()))
        .unwrap_or_else(|| "the warehouse".into());
    let oauth = matches!(inputs.credentials, Some(Credentials::OAuthM2M { .. }));
    let started = Instant::now();
    let reached = warehouse
        .execute("SELECT 1", &[], Idempotency::Safe, inputs.deadline)
        .await;
    let first = match reached {
        Ok(result) => match result
            .rows
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
        {
            Some(one) if one.trim() == "1" => CheckResult::pass(
                names::WAREHOUSE,
                format!(
                    "{label} answered SELECT 1 in {} ms",
                    started.elapsed().as_millis()
                ),
            ),
            other => CheckResult::fail(
                names::WAREHOUSE,
                format!(
                    "{label} answered SELECT 1 with {:?} instead of 1",
                    other.unwrap_or_default()
                ),
                "check that DATABRICKS_HOST and DATABRICKS_HTTP_PATH name a Databricks SQL warehouse",
            ),
        },
        Err(e) => warehouse_failure(names::WAREHOUSE, &e, &label, oauth),
    };
    if !first.ok {
        let second =
            CheckResult::not_run(names::CATALOG_SCHEMA, "not run: the warehouse check failed");
        return (first, second);
    }
    let second = check_schema(warehouse, inputs, &label, oauth).await;
    (first, second)
}

/// Explains a warehouse failure with the fix, from the typed error.
pub fn warehouse_failure(
    name: &'static str,
    e: &WarehouseError,
    label: &str,
    oauth: bool,
) -> CheckResult {
    let credentials_fix = if oauth {
        "check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (the service principal's OAuth secret, from its secret store) and that the service principal has CAN USE on the SQL warehouse"
    } else {
        "check DATABRICKS_TOKEN (a valid, unexpired personal access token, from its secret store) and that its user has CAN USE on the SQL warehouse"
    };
    let path_fix = "check DATABRICKS_HOST and DATABRICKS_HTTP_PATH (/sql/1.0/warehouses/<id>, copied from the warehouse's Connection details)";
    let start_fix = "start the warehouse in the Databricks UI (a stopped warehouse starts on the first statement, which can take minutes) and run the check again, or raise the deadline (the function timeout)";
    let summary = e.summary();
    match e {
        WarehouseError::UnknownOutcome { cause, .. } => {
            warehouse_failure(name, cause, label, oauth)
        }
        WarehouseError::Http {
            operation: Operation::Token,
            status: 400 | 401 | 403,
            ..
        } => CheckResult::fail(
            name,
            format!("the workspace refused the OAuth client credentials ({summary})"),
            credentials_fix,
        ),
        WarehouseError::Http {
            status: 401 | 403, ..
        } => CheckResult::fail(
            name,
            format!("{label} refused the credentials ({summary})"),
            credentials_fix,
        ),
        WarehouseError::Http { status: 404, .. } => CheckResult::fail(
            name,
            format!("{label} does not exist or the host is not a Databricks workspace ({summary})"),
            path_fix,
        ),
        WarehouseError::Http {
            status: 400,
            error_code: Some(code),
            snippet,
            ..
        } if code == "RESOURCE_DOES_NOT_EXIST"
            || code == "NOT_FOUND"
            || snippet.to_ascii_lowercase().contains("warehouse") =>
        {
            CheckResult::fail(
                name,
                format!("{label} was refused as a SQL warehouse ({summary})"),
                path_fix,
            )
        }
        WarehouseError::Http {
            status: 429 | 502 | 503 | 504,
            ..
        } => CheckResult::fail(
            name,
            format!("{label} is overloaded or unavailable and stayed so after retries ({summary})"),
            "run the check again; if it persists, check the warehouse's state and scaling (cluster size, max clusters) in the Databricks UI",
        ),
        WarehouseError::Transport {
            kind: TransportKind::Connect,
            ..
        } => CheckResult::fail(
            name,
            format!("{label} cannot be reached ({summary})"),
            "check DATABRICKS_HOST and the network path: a Lambda function in a VPC needs outbound HTTPS to the workspace (NAT gateway or PrivateLink)",
        ),
        WarehouseError::Transport {
            kind: TransportKind::Timeout,
            ..
        }
        | WarehouseError::Deadline { .. } => CheckResult::fail(
            name,
            format!(
                "{label} did not answer before the deadline: it is probably stopped and starting, or overloaded ({summary})"
            ),
            start_fix,
        ),
        WarehouseError::Canceled { .. } => CheckResult::fail(
            name,
            format!(
                "{label} canceled the statement: it was probably stopped or restarted ({summary})"
            ),
            start_fix,
        ),
        WarehouseError::Failed { message, .. }
            if message.to_ascii_lowercase().contains("stopped") =>
        {
            CheckResult::fail(name, format!("{label} is stopped ({summary})"), start_fix)
        }
        WarehouseError::Protocol { .. } => CheckResult::fail(
            name,
            format!(
                "{label} did not answer like the Databricks SQL Statement Execution API ({summary})"
            ),
            path_fix,
        ),
        WarehouseError::Settings(s) => CheckResult::fail(
            name,
            format!("the warehouse settings cannot be used: {s}"),
            path_fix,
        ),
        other => CheckResult::fail(
            name,
            format!("{label} failed: {}", short(&other.to_string(), 240)),
            "see the error; check the warehouse's state and the credentials' permissions in the Databricks UI",
        ),
    }
}

async fn check_schema<S, E: StatementExecutor>(
    warehouse: &E,
    inputs: &CheckInputs<'_, S, E>,
    label: &str,
    oauth: bool,
) -> CheckResult {
    let name = names::CATALOG_SCHEMA;
    let (sql, target) = match (inputs.catalog, inputs.schema) {
        (Some(c), Some(s)) => {
            let target = format!("{}.{}", quote_ident(c), quote_ident(s));
            (format!("SHOW TABLES IN {target}"), target)
        }
        (None, Some(s)) => {
            let target = quote_ident(s);
            (format!("SHOW TABLES IN {target}"), target)
        }
        (Some(c), None) => {
            let target = quote_ident(c);
            (format!("SHOW SCHEMAS IN {target}"), target)
        }
        (None, None) => {
            return CheckResult::skip(
                name,
                "not checked: neither DELTASINK_CATALOG nor DELTASINK_SCHEMA is set, so tables are named in full by the routes",
            );
        }
    };
    match warehouse
        .execute(&sql, &[], Idempotency::Safe, inputs.deadline)
        .await
    {
        Ok(result) => CheckResult::pass(
            name,
            format!("{sql} succeeded ({} rows)", result.rows.len()),
        ),
        Err(e) => {
            let text = match &e {
                WarehouseError::Failed {
                    message,
                    error_code,
                    ..
                } => format!("{} {message}", error_code.as_deref().unwrap_or_default()),
                WarehouseError::Http {
                    snippet,
                    error_code,
                    ..
                } => format!("{} {snippet}", error_code.as_deref().unwrap_or_default()),
                _ => String::new(),
            };
            let upper = text.to_ascii_uppercase();
            let summary = e.summary();
            let catalog = inputs.catalog.map(quote_ident);
            if upper.contains("SCHEMA_NOT_FOUND") && inputs.schema.is_some() {
                CheckResult::fail(
                    name,
                    format!("schema {target} does not exist ({summary})"),
                    format!(
                        "create it with CREATE SCHEMA IF NOT EXISTS {target} (or correct DELTASINK_SCHEMA), then GRANT USE SCHEMA, CREATE TABLE, SELECT, MODIFY ON SCHEMA {target} TO <the token's user or service principal>"
                    ),
                )
            } else if upper.contains("CATALOG_NOT_FOUND")
                || upper.contains("NO_SUCH_CATALOG")
                || (upper.contains("SCHEMA_NOT_FOUND") && inputs.schema.is_none())
            {
                let c = catalog.unwrap_or_else(|| "the catalog".into());
                CheckResult::fail(
                    name,
                    format!("catalog {c} does not exist or is not visible ({summary})"),
                    format!(
                        "correct DELTASINK_CATALOG, or create the catalog and GRANT USE CATALOG ON CATALOG {c} TO <the token's user or service principal>"
                    ),
                )
            } else if upper.contains("INSUFFICIENT_PERMISSIONS")
                || upper.contains("PERMISSION_DENIED")
                || e.sql_state() == Some("42501")
            {
                let principal = current_user(warehouse, inputs.deadline).await;
                let use_catalog = catalog
                    .map(|c| format!("GRANT USE CATALOG ON CATALOG {c} TO {principal}; "))
                    .unwrap_or_default();
                CheckResult::fail(
                    name,
                    format!("the credentials may not use {target} ({summary})"),
                    format!(
                        "{use_catalog}GRANT USE SCHEMA, CREATE TABLE, SELECT, MODIFY ON SCHEMA {target} TO {principal}"
                    ),
                )
            } else {
                warehouse_failure(name, &e, label, oauth)
            }
        }
    }
}

/// The principal the statements run as, quoted for a GRANT, or a placeholder.
async fn current_user<E: StatementExecutor>(warehouse: &E, deadline: Instant) -> String {
    let user = warehouse
        .execute(
            "SELECT current_user() AS principal",
            &[],
            Idempotency::Safe,
            deadline,
        )
        .await
        .ok()
        .and_then(|r| {
            r.rows
                .first()
                .and_then(|row| row.first())
                .cloned()
                .flatten()
        })
        .filter(|u| !u.trim().is_empty());
    match user {
        Some(u) => quote_ident(u.trim()),
        None => "<the token's user or service principal>".into(),
    }
}
