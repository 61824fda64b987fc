#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::test_vars;
use crate::store::{MemoryStore, ObjectInfo, StoreError};
use crate::test_support::{LogCapture, TestServer};
use crate::warehouse::{FakeExecutor, Operation, StatementResult, TransportKind, WarehouseError};
use bytes::Bytes;
use std::net::TcpListener;
use std::sync::Mutex;

const TOKEN: &str = "dapi-S3CRET-token-0123";
const CLIENT_SECRET: &str = "oauth-S3CRET-secret-4567";
const REGISTRY_PASSWORD: &str = "reg-S3CRET-pw-89";

/// Taken by every test that calls `run` (directly or through `check_vars`), so that the log
/// test sees its log lines: tracing caches a callsite's interest when it is first hit, and a
/// hit from another test's thread (no subscriber there) could cache "never".
static RUN_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn far() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// Valid variables for every check, with `pairs` applied on top (an empty value removes one).
fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let base = [
        (vars::STAGING_BUCKET, "bucket"),
        (vars::DATABRICKS_TOKEN, TOKEN),
        (vars::CATALOG, "main"),
        (vars::SCHEMA, "sales"),
    ];
    test_vars(&[&base[..], pairs].concat())
}

fn rows(values: &[&str]) -> StatementResult {
    StatementResult {
        statement_id: "s".into(),
        columns: vec![("c".into(), "STRING".into())],
        rows: values.iter().map(|v| vec![Some(v.to_string())]).collect(),
        row_count: values.len() as u64,
    }
}

fn inputs<'a, S: ObjectStore>(
    store: &'a S,
    warehouse: Option<&'a FakeExecutor>,
) -> CheckInputs<'a, S, FakeExecutor> {
    let mut i = CheckInputs::new(store, "_deltasink", far());
    i.bucket = Some("bucket");
    i.warehouse = warehouse;
    i.catalog = Some("main");
    i.schema = Some("sales");
    i
}

// ---- a store with scripted failures ------------------------------------------------------------

#[derive(Default)]
struct ScriptedStore {
    inner: MemoryStore,
    put: Option<String>,
    get: Option<String>,
    list: Option<String>,
    delete: Option<String>,
    /// Returned by `get` instead of the object.
    read_back: Option<Bytes>,
    /// `put` never answers.
    hang: bool,
    deletes: Mutex<Vec<String>>,
}

impl ScriptedStore {
    fn err(op: &'static str, bucket: &str, key: &str, detail: &str) -> StoreError {
        StoreError {
            operation: op,
            bucket: bucket.into(),
            key: key.into(),
            detail: detail.into(),
        }
    }
}

impl ObjectStore for ScriptedStore {
    async fn put(&self, b: &str, k: &str, body: Bytes, ct: &str) -> Result<(), StoreError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        match &self.put {
            Some(d) => Err(Self::err("PutObject", b, k, d)),
            None => self.inner.put(b, k, body, ct).await,
        }
    }

    async fn get(&self, b: &str, k: &str) -> Result<Bytes, StoreError> {
        if let Some(d) = &self.get {
            return Err(Self::err("GetObject", b, k, d));
        }
        if let Some(r) = &self.read_back {
            return Ok(r.clone());
        }
        self.inner.get(b, k).await
    }

    async fn get_tail(&self, b: &str, k: &str, len: u64) -> Result<Bytes, StoreError> {
        self.inner.get_tail(b, k, len).await
    }

    async fn list(&self, b: &str, p: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        match &self.list {
            Some(d) => Err(Self::err("ListObjectsV2", b, p, d)),
            None => self.inner.list(b, p).await,
        }
    }

    async fn delete(&self, b: &str, k: &str) -> Result<(), StoreError> {
        self.deletes.lock().unwrap().push(k.to_string());
        match &self.delete {
            Some(d) => Err(Self::err("DeleteObject", b, k, d)),
            None => self.inner.delete(b, k).await,
        }
    }
}

async fn bucket_result(store: &ScriptedStore) -> CheckResult {
    let i = inputs(store, None);
    check_bucket(&i).await
}

// ---- report ------------------------------------------------------------------------------------

#[test]
fn render_and_json() {
    let report = CheckReport {
        checks: vec![
            CheckResult::pass("a", "fine"),
            CheckResult::fail("b", "broken", "mend it"),
            CheckResult::skip("c", "not configured"),
            CheckResult::not_run("d", "not run: b failed"),
        ],
    };
    assert!(!report.ok());
    assert_eq!(
        report.render(),
        "ok   a: fine\nFAIL b: broken — fix: mend it\nskip c: not configured\nskip d: not run: b failed\n1 failed, 1 not run\n"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checks"][1]["fix"], "mend it");
    assert_eq!(json["checks"][2]["skipped"], true);
    let good = CheckReport {
        checks: vec![CheckResult::pass("a", "x"), CheckResult::skip("c", "y")],
    };
    assert!(good.ok());
    assert!(
        good.render()
            .ends_with("all checks passed (1 not applicable)\n")
    );
}

// ---- 1. configuration --------------------------------------------------------------------------

#[test]
fn good_load_configuration_passes_and_stage_is_skipped_without_stage_variables() {
    let (results, load, stage) = check_config(&map(&[]), StageCheck::Auto);
    assert!(load.is_some() && stage.is_none());
    assert_eq!(results.len(), 2);
    assert!(results[0].ok && !results[0].skipped, "{results:?}");
    assert_eq!(results[0].name, names::CONFIGURATION);
    assert!(results[1].ok && results[1].skipped);
    assert_eq!(results[1].name, names::STAGE_CONFIGURATION);
}

#[test]
fn configuration_error_is_a_failed_check_naming_the_variable() {
    let (results, load, _) =
        check_config(&map(&[(vars::DATABRICKS_HTTP_PATH, "")]), StageCheck::Auto);
    assert!(load.is_none());
    let c = &results[0];
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("DATABRICKS_HTTP_PATH: is required"),
        "{c:?}"
    );
    let fix = c.fix.as_deref().unwrap();
    assert!(fix.contains("correct DATABRICKS_HTTP_PATH"), "{fix}");
    assert!(fix.contains("/sql/1.0/warehouses/<id>"), "{fix}");

    let (results, _, _) = check_config(
        &map(&[(
            vars::DATABRICKS_HTTP_PATH,
            "/sql/protocolv1/o/1/0123-456789-abc",
        )]),
        StageCheck::Auto,
    );
    assert!(results[0].detail.contains("SQL warehouse"), "{results:?}");
}

#[test]
fn maintain_setting_error_fails_configuration_but_keeps_the_load_settings() {
    let (results, load, _) = check_config(
        &map(&[(vars::TOMBSTONE_RETENTION_HOURS, "a week")]),
        StageCheck::Auto,
    );
    assert!(load.is_some());
    assert!(!results[0].ok);
    assert!(
        results[0]
            .detail
            .starts_with("DELTASINK_TOMBSTONE_RETENTION_HOURS:")
    );
}

#[test]
fn stage_configuration_is_checked_when_stage_variables_are_set_or_asked() {
    let bad_routes = map(&[(vars::ROUTES, "[{\"regex\": \"(\", \"table\": \"t\"}]")]);
    let (results, load, stage) = check_config(&bad_routes, StageCheck::Auto);
    assert!(load.is_some() && stage.is_none());
    assert!(!results[1].ok && !results[1].skipped);
    assert!(
        results[1].detail.starts_with("DELTASINK_ROUTES:"),
        "{results:?}"
    );

    let (results, _, _) = check_config(&bad_routes, StageCheck::Never);
    assert!(results[1].ok && results[1].skipped);

    let (results, _, stage) = check_config(&map(&[]), StageCheck::Always);
    assert!(results[1].ok && !results[1].skipped && stage.is_some());

    let with_registry = map(&[
        (vars::SCHEMA_REGISTRY_URL, "http://127.0.0.1:8081"),
        (
            vars::SCHEMA_REGISTRY_BASIC_AUTH,
            &format!("svc:{REGISTRY_PASSWORD}"),
        ),
    ]);
    let (results, _, stage) = check_config(&with_registry, StageCheck::Auto);
    assert!(stage.unwrap().registry.is_some());
    assert!(
        results
            .iter()
            .all(|r| !r.detail.contains(REGISTRY_PASSWORD))
    );
}

#[test]
fn stage_only_variables_exclude_shared_ones() {
    let only: Vec<&str> = stage_only_variables().collect();
    for shared in [
        vars::STAGING_BUCKET,
        vars::STAGING_PREFIX,
        vars::TABLES,
        vars::ERRORS_PREFIX,
        vars::SECRET_ARN,
    ] {
        assert!(!only.contains(&shared), "{shared}");
    }
    for stage in [vars::ROUTES, vars::TOPICS, vars::SCHEMA_REGISTRY_URL] {
        assert!(only.contains(&stage), "{stage}");
    }
}

// ---- 2. the staging bucket ---------------------------------------------------------------------

#[tokio::test]
async fn bucket_probe_is_written_read_listed_and_deleted_outside_the_staging_prefix() {
    let store = ScriptedStore::default();
    let c = bucket_result(&store).await;
    assert!(c.ok, "{c:?}");
    let deletes = store.deletes.lock().unwrap().clone();
    assert_eq!(deletes.len(), 1);
    let key = &deletes[0];
    assert!(key.starts_with("_deltasink/check/probe-"), "{key}");
    assert!(
        !key.starts_with("staging/") && !key.ends_with(".parquet"),
        "{key}"
    );
    assert!(store.inner.keys().is_empty(), "the probe was left behind");
    assert!(c.detail.contains(key.as_str()));
}

#[tokio::test]
async fn probe_refuses_a_state_prefix_inside_the_staging_prefix() {
    let store = ScriptedStore::default();
    let mut i = inputs(&store, None);
    i.state_prefix = "staging/state";
    let c = check_bucket(&i).await;
    assert!(!c.ok);
    assert!(store.inner.put_count() == 0);
}

#[tokio::test]
async fn missing_bucket_says_create_it() {
    // The SDK's text for a PutObject to a bucket that does not exist.
    let store = ScriptedStore {
        put: Some("service error: unhandled error (NoSuchBucket): Error { code: \"NoSuchBucket\", message: \"The specified bucket does not exist\", aws_request_id: \"x\" }".into()),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        "bucket bucket does not exist (PutObject: NoSuchBucket)"
    );
    assert!(c.fix.unwrap().contains("create the bucket bucket"));
}

#[tokio::test]
async fn access_denied_says_which_permissions() {
    let store = ScriptedStore {
        get: Some("service error: unhandled error (AccessDenied): Error { code: \"AccessDenied\", message: \"Access Denied\" }".into()),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(!c.ok);
    assert!(c.detail.contains("denied GetObject"), "{c:?}");
    let fix = c.fix.unwrap();
    assert!(
        fix.contains("s3:GetObject") && fix.contains("arn:aws:s3:::bucket/*"),
        "{fix}"
    );
    // The probe written before the failure is still deleted.
    assert_eq!(store.deletes.lock().unwrap().len(), 1);
    assert!(store.inner.keys().is_empty());
}

#[tokio::test]
async fn unreachable_endpoint_points_at_the_network() {
    let store = ScriptedStore {
        put: Some("dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)".into()),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(
        c.detail.starts_with("the S3 endpoint is unreachable"),
        "{c:?}"
    );
    assert!(
        c.detail.contains("Connection refused (os error 111)"),
        "{c:?}"
    );
    assert!(c.fix.unwrap().contains("AWS_ENDPOINT_URL"));
}

#[tokio::test]
async fn other_store_failures_are_explained() {
    let cases = [
        (
            "service error: unhandled error (InvalidAccessKeyId)",
            "credentials",
        ),
        (
            "service error: unhandled error (PermanentRedirect)",
            "region",
        ),
        ("service error: KMS.AccessDeniedException", "KMS"),
        ("something odd", "failed: something odd"),
    ];
    for (detail, expected) in cases {
        let store = ScriptedStore {
            put: Some(detail.into()),
            ..Default::default()
        };
        let c = bucket_result(&store).await;
        assert!(!c.ok && c.fix.is_some());
        assert!(c.detail.contains(expected), "{detail}: {c:?}");
    }
}

#[tokio::test]
async fn list_and_delete_failures_and_a_changed_read_fail_the_check() {
    let store = ScriptedStore {
        read_back: Some(Bytes::from_static(b"rewritten")),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(!c.ok && c.detail.contains("differ"), "{c:?}");
    assert!(store.inner.keys().is_empty());

    let store = ScriptedStore {
        list: Some("unhandled error (AccessDenied)".into()),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(c.detail.contains("ListObjectsV2"), "{c:?}");
    assert!(c.fix.unwrap().contains("s3:ListBucket"));

    let store = ScriptedStore {
        delete: Some("unhandled error (AccessDenied)".into()),
        ..Default::default()
    };
    let c = bucket_result(&store).await;
    assert!(c.detail.contains("DeleteObject"), "{c:?}");
}

#[tokio::test]
async fn store_that_never_answers_is_cut_at_the_deadline() {
    let store = ScriptedStore {
        hang: true,
        ..Default::default()
    };
    let mut i = inputs(&store, None);
    i.deadline = Instant::now() + Duration::from_millis(50);
    let c = check_bucket(&i).await;
    assert!(!c.ok);
    assert!(
        c.detail.contains("did not answer before the deadline"),
        "{c:?}"
    );
}

#[tokio::test]
async fn no_bucket_means_not_run() {
    let store = ScriptedStore::default();
    let mut i = inputs(&store, None);
    i.bucket = None;
    let c = check_bucket(&i).await;
    assert!(!c.ok && c.skipped);
}

// ---- 3 and 4. the warehouse, the catalog and schema -------------------------------------------

async fn warehouse_results(fake: &FakeExecutor) -> (CheckResult, CheckResult) {
    let store = MemoryStore::new();
    let i = inputs(&store, Some(fake));
    check_warehouse_and_schema(&i).await
}

fn http(status: u16, code: &str) -> WarehouseError {
    WarehouseError::Http {
        operation: Operation::Submit,
        statement_id: None,
        status,
        error_code: Some(code.into()),
        snippet: "refused".into(),
        retry_after: None,
    }
}

fn failed(code: &str, message: &str, state: Option<&str>) -> WarehouseError {
    WarehouseError::Failed {
        statement_id: "s1".into(),
        error_code: Some(code.into()),
        sql_state: state.map(str::to_string),
        message: message.into(),
    }
}

#[tokio::test]
async fn reachable_warehouse_and_usable_schema_pass_with_quoted_names() {
    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    fake.push_ok(rows(&["orders", "customers"]));
    let store = MemoryStore::new();
    let mut i = inputs(&store, Some(&fake));
    i.schema = Some("sa`les");
    let (w, s) = check_warehouse_and_schema(&i).await;
    assert!(w.ok && s.ok, "{w:?} {s:?}");
    let sql: Vec<String> = fake.calls().into_iter().map(|c| c.sql).collect();
    assert_eq!(sql, ["SELECT 1", "SHOW TABLES IN `main`.`sa``les`"]);
    assert!(s.detail.contains("2 rows"));
}

#[tokio::test]
async fn warehouse_failures_are_explained_and_the_schema_check_does_not_run() {
    let cases: Vec<(WarehouseError, &str, &str)> = vec![
        (
            http(401, "UNAUTHENTICATED"),
            "refused the credentials",
            "DATABRICKS_TOKEN",
        ),
        (
            http(403, "PERMISSION_DENIED"),
            "refused the credentials",
            "CAN USE",
        ),
        (
            http(404, "ENDPOINT_NOT_FOUND"),
            "does not exist",
            "DATABRICKS_HTTP_PATH",
        ),
        (
            http(400, "RESOURCE_DOES_NOT_EXIST"),
            "refused as a SQL warehouse",
            "DATABRICKS_HTTP_PATH",
        ),
        (
            http(503, "TEMPORARILY_UNAVAILABLE"),
            "unavailable",
            "scaling",
        ),
        (
            WarehouseError::Transport {
                operation: Operation::Submit,
                statement_id: None,
                kind: TransportKind::Connect,
                detail: "refused".into(),
            },
            "cannot be reached",
            "DATABRICKS_HOST",
        ),
        (
            WarehouseError::Deadline {
                statement_id: Some("s".into()),
                canceled: true,
            },
            "did not answer before the deadline",
            "start the warehouse",
        ),
        (
            failed(
                "BAD_REQUEST",
                "The warehouse was stopped while the query ran",
                None,
            ),
            "is stopped",
            "start the warehouse",
        ),
        (
            WarehouseError::Canceled {
                statement_id: "s".into(),
            },
            "canceled",
            "start the warehouse",
        ),
        (
            WarehouseError::Protocol {
                operation: Operation::Submit,
                statement_id: None,
                detail: "not JSON".into(),
            },
            "Statement Execution API",
            "DATABRICKS_HOST",
        ),
    ];
    for (error, detail, fix) in cases {
        let shown = error.to_string();
        let fake = FakeExecutor::new();
        fake.push_err(error);
        let (w, s) = warehouse_results(&fake).await;
        assert!(!w.ok, "{shown}");
        assert!(w.detail.contains(detail), "{shown}: {w:?}");
        assert!(w.fix.as_deref().unwrap().contains(fix), "{shown}: {w:?}");
        assert!(!s.ok && s.skipped, "{s:?}");
        assert_eq!(fake.calls().len(), 1, "only SELECT 1 ran");
    }
}

#[tokio::test]
async fn oauth_credentials_get_the_oauth_fix() {
    let fake = FakeExecutor::new();
    fake.push_err(WarehouseError::Http {
        operation: Operation::Token,
        statement_id: None,
        status: 401,
        error_code: None,
        snippet: "invalid_client".into(),
        retry_after: None,
    });
    let creds = Credentials::oauth_m2m("sp-id", CLIENT_SECRET).unwrap();
    let store = MemoryStore::new();
    let mut i = inputs(&store, Some(&fake));
    i.credentials = Some(&creds);
    let (w, _) = check_warehouse_and_schema(&i).await;
    assert!(w.detail.contains("OAuth"), "{w:?}");
    assert!(w.fix.unwrap().contains("DATABRICKS_CLIENT_SECRET"));
}

#[tokio::test]
async fn select_one_answering_something_else_fails() {
    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["2"]));
    let (w, s) = warehouse_results(&fake).await;
    assert!(!w.ok && w.detail.contains("\"2\""), "{w:?}");
    assert!(s.skipped);
}

#[tokio::test]
async fn missing_schema_says_create_schema() {
    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    fake.push_err(failed(
        "BAD_REQUEST",
        "[SCHEMA_NOT_FOUND] The schema `main`.`sales` cannot be found.",
        Some("42704"),
    ));
    let (w, s) = warehouse_results(&fake).await;
    assert!(w.ok);
    assert!(!s.ok);
    assert!(
        s.detail.starts_with("schema `main`.`sales` does not exist"),
        "{s:?}"
    );
    let fix = s.fix.unwrap();
    assert!(
        fix.contains("CREATE SCHEMA IF NOT EXISTS `main`.`sales`"),
        "{fix}"
    );
    assert!(fix.contains("GRANT USE SCHEMA, CREATE TABLE"), "{fix}");
}

#[tokio::test]
async fn missing_catalog_and_missing_permissions_are_told_apart() {
    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    fake.push_err(failed(
        "BAD_REQUEST",
        "[NO_SUCH_CATALOG_EXCEPTION] Catalog 'main' was not found.",
        None,
    ));
    let (_, s) = warehouse_results(&fake).await;
    assert!(
        s.detail.starts_with("catalog `main` does not exist"),
        "{s:?}"
    );
    assert!(s.fix.unwrap().contains("DELTASINK_CATALOG"));

    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    fake.push_err(failed(
        "BAD_REQUEST",
        "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have USE SCHEMA on Schema 'main.sales'.",
        Some("42501"),
    ));
    fake.push_ok(rows(&["etl@example.com"]));
    let (_, s) = warehouse_results(&fake).await;
    assert!(s.detail.contains("may not use `main`.`sales`"), "{s:?}");
    let fix = s.fix.unwrap();
    assert_eq!(
        fix,
        "GRANT USE CATALOG ON CATALOG `main` TO `etl@example.com`; GRANT USE SCHEMA, CREATE TABLE, SELECT, MODIFY ON SCHEMA `main`.`sales` TO `etl@example.com`"
    );
}

#[tokio::test]
async fn schema_check_without_catalog_or_schema() {
    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    let store = MemoryStore::new();
    let mut i = inputs(&store, Some(&fake));
    i.catalog = None;
    i.schema = None;
    let (_, s) = check_warehouse_and_schema(&i).await;
    assert!(s.ok && s.skipped, "{s:?}");
    assert_eq!(fake.calls().len(), 1);

    let fake = FakeExecutor::new();
    fake.push_ok(rows(&["1"]));
    let mut i = inputs(&store, Some(&fake));
    i.schema = None;
    let (_, s) = check_warehouse_and_schema(&i).await;
    assert!(s.ok, "{s:?}");
    assert_eq!(fake.calls()[1].sql, "SHOW SCHEMAS IN `main`");
}

#[tokio::test]
async fn no_warehouse_means_not_run() {
    let store = MemoryStore::new();
    let i = inputs(&store, None);
    let (w, s) = check_warehouse_and_schema(&i).await;
    assert!(!w.ok && w.skipped && !s.ok && s.skipped);
}

// ---- 5. the schema registry --------------------------------------------------------------------

fn registry(url: &str, auth: bool) -> RegistryConfig {
    RegistryConfig {
        url: url.to_string(),
        basic_auth: auth.then(|| ("svc".to_string(), REGISTRY_PASSWORD.to_string())),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn registry_answering_subjects_passes_with_basic_auth() {
    let server = TestServer::start(
        "application/json",
        vec![(200, r#"["orders-value","customers-value"]"#.into())],
    );
    let c = check_registry(
        Some(&registry(&format!("{}/prefix/", server.url), true)),
        far(),
    )
    .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.contains("2 subjects"));
    let head = server.requests()[0].clone();
    assert!(head.starts_with("GET /prefix/subjects "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("authorization: basic "),
        "{head}"
    );
}

#[tokio::test]
async fn registry_credentials_in_the_url_are_used_and_never_shown() {
    let server = TestServer::start("application/json", vec![(200, "[]".into())]);
    let url = server
        .url
        .replace("http://", &format!("http://svc:{REGISTRY_PASSWORD}@"));
    let c = check_registry(Some(&registry(&url, false)), far()).await;
    assert!(c.ok, "{c:?}");
    assert!(!c.detail.contains(REGISTRY_PASSWORD), "{c:?}");
    let head = server.requests()[0].clone();
    assert!(
        head.to_ascii_lowercase().contains("authorization: basic "),
        "{head}"
    );
}

#[tokio::test]
async fn registry_failures_are_explained() {
    let cases = [
        (
            401,
            "{}",
            "refused access",
            "DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH",
        ),
        (
            404,
            "{}",
            "not a schema registry",
            "DELTASINK_SCHEMA_REGISTRY_URL",
        ),
        (
            200,
            "<html>hello</html>",
            "not with a schema registry",
            "DELTASINK_SCHEMA_REGISTRY_URL",
        ),
        (500, "boom", "HTTP 500", "health"),
    ];
    for (status, body, detail, fix) in cases {
        let server = TestServer::start("application/json", vec![(status, body.into())]);
        let c = check_registry(Some(&registry(&server.url, true)), far()).await;
        assert!(!c.ok, "{status}");
        assert!(c.detail.contains(detail), "{status}: {c:?}");
        assert!(c.fix.as_deref().unwrap().contains(fix), "{status}: {c:?}");
    }
}

#[tokio::test]
async fn registry_on_a_closed_port_is_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = check_registry(
        Some(&registry(&format!("http://127.0.0.1:{port}"), true)),
        far(),
    )
    .await;
    assert!(!c.ok);
    assert!(c.detail.contains("cannot be reached"), "{c:?}");
    assert!(c.fix.unwrap().contains("DELTASINK_SCHEMA_REGISTRY_URL"));
}

#[tokio::test]
async fn registry_not_configured_is_skipped() {
    let c = check_registry(None, far()).await;
    assert!(c.ok && c.skipped);
}

// ---- the whole run, and secrets -----------------------------------------------------------------

#[tokio::test]
async fn run_reports_every_check_even_when_all_fail() {
    let _serial = RUN_LOCK.lock().await;
    let store = ScriptedStore {
        put: Some("unhandled error (NoSuchBucket)".into()),
        ..Default::default()
    };
    let fake = FakeExecutor::new();
    fake.push_err(http(403, "PERMISSION_DENIED"));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reg = registry(&format!("http://127.0.0.1:{port}"), false);
    let mut i = inputs(&store, Some(&fake));
    i.registry = Some(&reg);
    let config = vec![CheckResult::fail(names::CONFIGURATION, "X: bad", "fix X")];
    let report = run(config, i).await;
    let got: Vec<(&str, bool)> = report.checks.iter().map(|c| (c.name, c.ok)).collect();
    assert_eq!(
        got,
        [
            (names::CONFIGURATION, false),
            (names::BUCKET, false),
            (names::WAREHOUSE, false),
            (names::CATALOG_SCHEMA, false),
            (names::REGISTRY, false),
        ]
    );
    assert_eq!(report.render().lines().count(), 6);
}

#[test]
fn no_secret_in_any_detail_fix_rendering_or_log_line() {
    let _serial = RUN_LOCK.blocking_lock();
    let logs = LogCapture::new();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets = [TOKEN, CLIENT_SECRET, REGISTRY_PASSWORD];
    let report = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        runtime.block_on(async {
            // Every outside answer quotes a secret: the check must scrub them all.
            let store = ScriptedStore {
                put: Some(format!(
                    "weird failure mentioning {TOKEN} and {CLIENT_SECRET}"
                )),
                ..Default::default()
            };
            let fake = FakeExecutor::new();
            fake.push_err(failed(
                "BAD_REQUEST",
                &format!("token {TOKEN} rejected"),
                None,
            ));
            let server = TestServer::start(
                "application/json",
                vec![(
                    500,
                    format!(
                        "password {REGISTRY_PASSWORD} and its encoding {}",
                        REGISTRY_PASSWORD.replace('-', "%2D")
                    ),
                )],
            );
            let reg = registry(&server.url, true);
            let creds = Credentials::token(TOKEN).unwrap();
            let mut i = inputs(&store, Some(&fake));
            i.registry = Some(&reg);
            i.credentials = Some(&creds);
            i.secrets = vec![CLIENT_SECRET.to_string()];
            let (config, _, _) = check_config(
                &map(&[
                    (vars::DATABRICKS_CLIENT_SECRET, CLIENT_SECRET),
                    (vars::SCHEMA_REGISTRY_URL, &server.url),
                    (
                        vars::SCHEMA_REGISTRY_BASIC_AUTH,
                        &format!("svc:{REGISTRY_PASSWORD}"),
                    ),
                ]),
                StageCheck::Auto,
            );
            run(config, i).await
        })
    });
    assert!(!report.ok());
    let json = serde_json::to_string(&report).unwrap();
    let text = report.render();
    let logged = logs.text();
    assert!(
        logged.contains("staging bucket"),
        "the checks were logged: {logged}"
    );
    for secret in secrets {
        let encoded = secret.replace('-', "%2D");
        for (what, haystack) in [("json", &json), ("render", &text), ("logs", &logged)] {
            assert!(
                !haystack.contains(secret),
                "{what} shows {secret}: {haystack}"
            );
            assert!(
                !haystack.contains(&encoded),
                "{what} shows {encoded}: {haystack}"
            );
        }
    }
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn scrub_replaces_longest_first_and_encodings() {
    let secrets = vec!["ab".to_string(), "abc d".to_string(), String::new()];
    assert_eq!(
        scrub("xx abc d ab abc%20d", &secrets),
        "xx <redacted> <redacted> <redacted>"
    );
}

#[test]
fn secrets_in_raw_variables() {
    let m = map(&[
        (vars::DATABRICKS_CLIENT_SECRET, CLIENT_SECRET),
        (
            vars::SCHEMA_REGISTRY_BASIC_AUTH,
            &format!("svc:{REGISTRY_PASSWORD}"),
        ),
        (
            vars::SCHEMA_REGISTRY_URL,
            "https://u:url-pw@registry.example.com",
        ),
        (
            vars::DATABRICKS_JDBC_URL,
            "jdbc:databricks://h:443/default;httpPath=/sql/1.0/warehouses/w;UID=token;PWD=jdbc-pw",
        ),
    ]);
    let s = secrets_in_vars(&m);
    for expected in [TOKEN, CLIENT_SECRET, REGISTRY_PASSWORD, "url-pw", "jdbc-pw"] {
        assert!(s.iter().any(|x| x == expected), "{expected} in {s:?}");
    }
}

#[tokio::test]
async fn check_vars_runs_the_other_checks_when_the_warehouse_settings_fail() {
    let _serial = RUN_LOCK.lock().await;
    let store = MemoryStore::new();
    let m = map(&[(vars::DATABRICKS_HTTP_PATH, "")]);
    let report = check_vars(&m, &store, &CheckOptions::new(far())).await;
    let get = |n| report.get(n).unwrap();
    assert!(!get(names::CONFIGURATION).ok);
    assert!(get(names::BUCKET).ok, "{report:?}");
    assert!(
        get(names::BUCKET)
            .detail
            .contains("_deltasink/check/probe-")
    );
    assert!(get(names::WAREHOUSE).skipped && !get(names::WAREHOUSE).ok);
    assert!(get(names::CATALOG_SCHEMA).skipped);
    assert!(get(names::REGISTRY).ok && get(names::REGISTRY).skipped);
    assert!(!report.render().contains(TOKEN));
}

#[tokio::test]
async fn check_vars_with_an_unreachable_warehouse() {
    let _serial = RUN_LOCK.lock().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = MemoryStore::new();
    let host = format!("http://127.0.0.1:{port}");
    let m = map(&[(vars::DATABRICKS_HOST, &host)]);
    let report = check_vars(&m, &store, &CheckOptions::new(far())).await;
    let w = report.get(names::WAREHOUSE).unwrap();
    assert!(!w.ok && w.detail.contains("cannot be reached"), "{w:?}");
    assert!(report.get(names::CONFIGURATION).unwrap().ok);
    assert!(report.get(names::BUCKET).unwrap().ok);
}

/// The wiring of a warm maintain function: its parsed settings, store and warehouse.
#[tokio::test]
async fn run_with_the_clients_of_a_warm_function() {
    let _serial = RUN_LOCK.lock().await;
    let vars = map(&[(vars::ROUTES, r#"[{"strip_prefix": "cdc."}]"#)]);
    let (config_checks, load, stage) = check_config(&vars, StageCheck::Auto);
    let load = load.unwrap();
    let store = MemoryStore::new();
    let warehouse = FakeExecutor::new();
    warehouse.push_ok(rows(&["1"]));
    let mut inputs = CheckInputs::new(&store, "ignored", far())
        .with_load(&load)
        .with_warehouse(&warehouse);
    if let Some(stage) = &stage {
        inputs = inputs.with_stage(stage);
    }
    inputs.secrets = secrets_in_vars(&vars);
    let report = run(config_checks, inputs).await;
    assert!(report.ok(), "{}", report.render());
    assert!(
        report
            .get(names::BUCKET)
            .unwrap()
            .detail
            .contains("s3://bucket: put, get, list and delete of the probe _deltasink/check/")
    );
    assert!(!report.get(names::STAGE_CONFIGURATION).unwrap().skipped);
    assert_eq!(warehouse.calls()[1].sql, "SHOW TABLES IN `main`.`sales`");
}
