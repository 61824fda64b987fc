//! `check`: what a user runs before trusting a deployment.
//!
//! Every check runs and reports, whatever the others found; none panics and none stops the
//! run early. A failure is explained in one sentence with the fix. The checks:
//! 1. **configuration**: the load and maintain settings parse ([`check_config`]); the stage
//!    settings too when stage-only variables are set or the caller asks ([`StageCheck`]);
//! 2. **staging bucket**: a small probe object under `<state prefix>/check/` (never under the
//!    staging prefix, never `.parquet`, so it cannot trigger a load) is put, read back and
//!    compared, listed and deleted;
//! 3. **warehouse**: `SELECT 1` answers 1;
//! 4. **catalog and schema**: `SHOW TABLES IN <catalog>.<schema>` succeeds (it needs
//!    `USE CATALOG` and `USE SCHEMA`; it does not prove `CREATE TABLE` or `MODIFY`);
//! 5. **schema registry** (when configured): `GET /subjects` answers a list.
//!
//! The S3, warehouse and registry checks run concurrently within one deadline. No secret (the
//! Databricks token, the OAuth client secret, the registry password, a JDBC `PWD`) reaches a
//! result or a log line: results are built from secret-free parts and then scrubbed of every
//! secret value known to the run.

mod bucket;
mod registry;
mod warehouse;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::ser::SerializeStruct as _;

use crate::config::{ConfigError, LoadConfig, MaintainConfig, StageConfig, Vars, vars};
use crate::registry::{RegistryConfig, redact_url};
use crate::store::ObjectStore;
use crate::warehouse::{
    ClientOptions, ConnectionSettings, Credentials, RetryPolicy, StatementExecutor, WarehouseClient,
};

pub use bucket::store_failure;
pub use warehouse::warehouse_failure;

use bucket::check_bucket;
use registry::check_registry;
use warehouse::check_warehouse_and_schema;

/// The names of the checks, in report order.
pub mod names {
    pub const CONFIGURATION: &str = "configuration";
    pub const STAGE_CONFIGURATION: &str = "stage configuration";
    pub const BUCKET: &str = "staging bucket";
    pub const WAREHOUSE: &str = "warehouse";
    pub const CATALOG_SCHEMA: &str = "catalog and schema";
    pub const REGISTRY: &str = "schema registry";
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    /// False when the check failed, or could not run because something it needs failed.
    pub ok: bool,
    /// The check did not run: not configured (`ok`), or a prerequisite failed (not `ok`).
    pub skipped: bool,
    /// What was found, in one sentence. Never holds a secret.
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl CheckResult {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            ok: true,
            skipped: false,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        CheckResult {
            name,
            ok: false,
            skipped: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not applicable to this deployment (nothing to check): does not fail the report.
    pub fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            ok: true,
            skipped: true,
            detail: detail.into(),
            fix: None,
        }
    }

    /// Could not run because a check it depends on failed: fails the report, and the fix is
    /// the other check's.
    pub fn not_run(name: &'static str, detail: impl Into<String>) -> Self {
        CheckResult {
            name,
            ok: false,
            skipped: true,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// Every check's result, in a fixed order. Serializes as `{"ok": bool, "checks": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub checks: Vec<CheckResult>,
}

impl CheckReport {
    /// True when no check failed (skipped checks that were not applicable do not count).
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// The result of the check `name`.
    pub fn get(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Human text: one line per check (`ok   …`, `FAIL … — fix: …`, `skip …` for a check not
    /// applicable or not run), then a summary line (`all checks passed`, `1 failed, 2 not run`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let tag = match (c.ok, c.skipped) {
                (true, false) => "ok  ",
                (false, false) => "FAIL",
                (_, true) => "skip",
            };
            out.push_str(&format!("{tag} {}: {}", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!(" — fix: {fix}"));
            }
            out.push('\n');
        }
        let count = |ok: bool, skipped: bool| {
            self.checks
                .iter()
                .filter(|c| c.ok == ok && c.skipped == skipped)
                .count()
        };
        let (failed, not_run, not_applicable) =
            (count(false, false), count(false, true), count(true, true));
        if failed + not_run == 0 {
            out.push_str("all checks passed");
            if not_applicable > 0 {
                out.push_str(&format!(" ({not_applicable} not applicable)"));
            }
        } else {
            out.push_str(&format!("{failed} failed"));
            if not_run > 0 {
                out.push_str(&format!(", {not_run} not run"));
            }
        }
        out.push('\n');
        out
    }
}

impl Serialize for CheckReport {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let mut s = serializer.serialize_struct("CheckReport", 2)?;
        s.serialize_field("ok", &self.ok())?;
        s.serialize_field("checks", &self.checks)?;
        s.end()
    }
}

// ---- 1. configuration ----------------------------------------------------------------------

/// Whether the stage configuration is checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StageCheck {
    /// When any stage-only variable ([`stage_only_variables`]) is set: the stage function's
    /// environment, or a local shell holding both functions' settings. The maintain function's
    /// own environment normally has none, so its check does not demand stage settings.
    #[default]
    Auto,
    Always,
    Never,
}

/// Variables only the stage function reads (in `vars::STAGE`, not in `vars::LOAD` nor
/// `vars::MAINTAIN`).
pub fn stage_only_variables() -> impl Iterator<Item = &'static str> {
    vars::STAGE.iter().map(|(name, _, _)| *name).filter(|name| {
        !vars::LOAD
            .iter()
            .chain(vars::MAINTAIN.iter())
            .any(|(other, _, _)| other == name)
    })
}

/// Check 1 from the raw variables: the load and maintain configuration always, the stage
/// configuration as `stage` says. A configuration error is a failed check (naming the variable, with the
/// fix), never a crash; the parsed configurations are returned for the other checks.
pub fn check_config(
    map: &HashMap<String, String>,
    stage: StageCheck,
) -> (Vec<CheckResult>, Option<LoadConfig>, Option<StageConfig>) {
    let mut results = Vec::with_capacity(2);
    let load = match LoadConfig::from_vars(map) {
        Ok(c) => {
            // The maintain settings include the load settings; their own are checked too, but
            // a problem there leaves the load settings usable for the other checks.
            results.push(match MaintainConfig::from_vars(map) {
                Ok(_) => CheckResult::pass(
                    names::CONFIGURATION,
                    format!(
                        "load and maintain settings are valid (bucket {}, staging prefix {}, state prefix {}, warehouse {} at {}, {}, catalog {}, schema {})",
                        c.bucket,
                        c.staging_prefix,
                        c.state_prefix,
                        c.connection.warehouse_id(),
                        c.connection.base_url(),
                        c.credentials.kind(),
                        c.catalog.as_deref().unwrap_or("(none)"),
                        c.schema.as_deref().unwrap_or("(none)"),
                    ),
                ),
                Err(e) => config_failure(names::CONFIGURATION, &e),
            });
            Some(c)
        }
        Err(e) => {
            results.push(config_failure(names::CONFIGURATION, &e));
            None
        }
    };
    let v = Vars::new(map);
    let present: Vec<&str> = stage_only_variables()
        .filter(|n| v.get(n).is_some())
        .collect();
    let wanted = match stage {
        StageCheck::Always => true,
        StageCheck::Never => false,
        StageCheck::Auto => !present.is_empty(),
    };
    let stage = if wanted {
        match StageConfig::from_vars(map) {
            Ok(c) => {
                results.push(CheckResult::pass(
                    names::STAGE_CONFIGURATION,
                    format!(
                        "stage settings are valid (bucket {}, staging prefix {}, errors prefix {}, schema registry {})",
                        c.bucket,
                        c.staging_prefix,
                        c.errors_prefix,
                        c.registry
                            .as_ref()
                            .map(|r| redact_url(&r.url))
                            .unwrap_or_else(|| "none".into()),
                    ),
                ));
                Some(c)
            }
            Err(e) => {
                results.push(config_failure(names::STAGE_CONFIGURATION, &e));
                None
            }
        }
    } else {
        results.push(CheckResult::skip(
            names::STAGE_CONFIGURATION,
            "not checked: no stage-only variable is set here (e.g. DELTASINK_ROUTES, DELTASINK_TOPICS, DELTASINK_SCHEMA_REGISTRY_URL)",
        ));
        None
    };
    (results, load, stage)
}

fn config_failure(name: &'static str, e: &ConfigError) -> CheckResult {
    let meaning = vars::LOAD
        .iter()
        .chain(vars::MAINTAIN.iter())
        .chain(vars::STAGE.iter())
        .find(|(n, _, _)| *n == e.variable)
        .map(|(_, _, meaning)| format!(" ({meaning})"))
        .unwrap_or_default();
    CheckResult::fail(
        name,
        format!("{}: {}", e.variable, e.problem),
        format!(
            "correct {}{meaning} in the function's environment, as the README's configuration reference describes",
            e.variable
        ),
    )
}

// ---- the inputs and the run ------------------------------------------------------------------

/// The state prefix when `DELTASINK_STATE_PREFIX` is unset (as the load configuration).
pub const DEFAULT_STATE_PREFIX: &str = "_deltasink";

/// What the checks run against. Build it with [`CheckInputs::new`] and the `with_*` methods
/// (or set the fields); anything absent makes its check report why it did not run.
pub struct CheckInputs<'a, S, E> {
    pub store: &'a S,
    pub bucket: Option<&'a str>,
    pub staging_prefix: &'a str,
    /// Prefix for deltasink's own objects; the probe goes under `<state_prefix>/check/`.
    pub state_prefix: &'a str,
    pub warehouse: Option<&'a E>,
    /// For messages (host, warehouse id) and secret scrubbing.
    pub connection: Option<&'a ConnectionSettings>,
    /// For messages (token or OAuth) and secret scrubbing.
    pub credentials: Option<&'a Credentials>,
    pub catalog: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub registry: Option<&'a RegistryConfig>,
    /// Every check finishes (or reports a timeout) by then.
    pub deadline: Instant,
    /// More values that must never be shown (raw variables of a configuration that failed).
    pub secrets: Vec<String>,
}

impl<'a, S: ObjectStore, E: StatementExecutor> CheckInputs<'a, S, E> {
    pub fn new(store: &'a S, state_prefix: &'a str, deadline: Instant) -> Self {
        CheckInputs {
            store,
            bucket: None,
            staging_prefix: "staging",
            state_prefix,
            warehouse: None,
            connection: None,
            credentials: None,
            catalog: None,
            schema: None,
            registry: None,
            deadline,
            secrets: Vec::new(),
        }
    }

    /// Bucket, staging and state prefixes, connection, credentials, catalog and schema of the
    /// load settings.
    pub fn with_load(mut self, load: &'a LoadConfig) -> Self {
        self.bucket = Some(&load.bucket);
        self.staging_prefix = &load.staging_prefix;
        self.state_prefix = &load.state_prefix;
        self.connection = Some(&load.connection);
        self.credentials = Some(&load.credentials);
        self.catalog = load.catalog.as_deref();
        self.schema = load.schema.as_deref();
        self
    }

    /// The schema registry of the stage settings (and their bucket when none is set yet).
    pub fn with_stage(mut self, stage: &'a StageConfig) -> Self {
        if self.bucket.is_none() {
            self.bucket = Some(&stage.bucket);
            self.staging_prefix = &stage.staging_prefix;
        }
        self.registry = stage.registry.as_ref();
        self
    }

    pub fn with_warehouse(mut self, warehouse: &'a E) -> Self {
        self.warehouse = Some(warehouse);
        self
    }
}

/// Runs checks 2 to 5 (concurrently) after the given configuration results, and returns
/// every result in order. Never panics, never stops early.
pub async fn run<S: ObjectStore, E: StatementExecutor>(
    config_checks: Vec<CheckResult>,
    inputs: CheckInputs<'_, S, E>,
) -> CheckReport {
    let (bucket, (warehouse, catalog), registry) = futures::join!(
        check_bucket(&inputs),
        check_warehouse_and_schema(&inputs),
        check_registry(inputs.registry, inputs.deadline),
    );
    let mut checks = config_checks;
    checks.extend([bucket, warehouse, catalog, registry]);
    let secrets = secrets_of(&inputs);
    for c in &mut checks {
        c.detail = scrub(&c.detail, &secrets);
        c.fix = c.fix.as_deref().map(|f| scrub(f, &secrets));
        if c.ok {
            tracing::info!(
                check = c.name,
                ok = c.ok,
                skipped = c.skipped,
                "{}",
                c.detail
            );
        } else {
            tracing::warn!(
                check = c.name,
                ok = c.ok,
                skipped = c.skipped,
                fix = c.fix.as_deref().unwrap_or(""),
                "{}",
                c.detail
            );
        }
    }
    CheckReport { checks }
}

/// How [`check_vars`] runs.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub stage: StageCheck,
    pub deadline: Instant,
    /// The warehouse client's timing ([`client_options`] by default).
    pub client: ClientOptions,
}

impl CheckOptions {
    pub fn new(deadline: Instant) -> Self {
        CheckOptions {
            stage: StageCheck::Auto,
            deadline,
            client: client_options(),
        }
    }
}

/// Warehouse client timing for a check: few attempts, so that an unreachable warehouse is
/// reported promptly rather than retried until the deadline.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        wait_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

/// Everything from the raw variables: the configuration checks, then the others against the
/// configured warehouse (a client built here), `store` and the registry. A setting that
/// fails leaves the checks that need it reported as not run; the others still run.
pub async fn check_vars<S: ObjectStore>(
    map: &HashMap<String, String>,
    store: &S,
    options: &CheckOptions,
) -> CheckReport {
    let (config_checks, load, stage) = check_config(map, options.stage);
    let v = Vars::new(map);
    let raw_bucket = v.get(vars::STAGING_BUCKET);
    let raw_prefix = v
        .prefix(vars::STAGING_PREFIX, "staging")
        .unwrap_or_else(|_| "staging".into());
    let raw_state = v
        .prefix(vars::STATE_PREFIX, DEFAULT_STATE_PREFIX)
        .unwrap_or_else(|_| DEFAULT_STATE_PREFIX.into());
    let mut client_error = None;
    let client = match &load {
        Some(c) => match WarehouseClient::new(
            c.connection.clone(),
            c.credentials.clone(),
            options.client.clone(),
        ) {
            Ok(client) => Some(client),
            Err(e) => {
                client_error = Some(warehouse_failure(
                    names::WAREHOUSE,
                    &e,
                    "the warehouse",
                    false,
                ));
                None
            }
        },
        None => None,
    };
    let mut inputs = CheckInputs::<S, WarehouseClient>::new(store, &raw_state, options.deadline);
    inputs.bucket = raw_bucket;
    inputs.staging_prefix = &raw_prefix;
    if let Some(stage) = &stage {
        inputs = inputs.with_stage(stage);
    }
    if let Some(load) = &load {
        inputs = inputs.with_load(load);
    }
    if let Some(client) = &client {
        inputs = inputs.with_warehouse(client);
    }
    let secrets = secrets_in_vars(map);
    inputs.secrets = secrets.clone();
    let mut report = run(config_checks, inputs).await;
    if let Some(mut failure) = client_error {
        // The client could not be built: say why in place of "not run".
        failure.detail = scrub(&failure.detail, &secrets);
        if let Some(slot) = report
            .checks
            .iter_mut()
            .find(|c| c.name == names::WAREHOUSE)
        {
            *slot = failure;
        }
    }
    report
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn short(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

// ---- secrets ---------------------------------------------------------------------------------

fn secrets_of<S, E>(inputs: &CheckInputs<'_, S, E>) -> Vec<String> {
    let mut out = inputs.secrets.clone();
    match inputs.credentials {
        Some(Credentials::Token(t)) => out.push(t.expose().to_string()),
        Some(Credentials::OAuthM2M { client_secret, .. }) => {
            out.push(client_secret.expose().to_string())
        }
        None => {}
    }
    if let Some(p) = inputs.connection.and_then(|c| c.jdbc_password()) {
        out.push(p.expose().to_string());
    }
    if let Some(r) = inputs.registry {
        if let Some((_, password)) = &r.basic_auth {
            out.push(password.clone());
        }
        out.extend(url_password(&r.url));
    }
    out
}

/// Secret values in raw variables (for a configuration that failed to parse).
pub fn secrets_in_vars(map: &HashMap<String, String>) -> Vec<String> {
    let v = Vars::new(map);
    let mut out = Vec::new();
    for name in [vars::DATABRICKS_TOKEN, vars::DATABRICKS_CLIENT_SECRET] {
        out.extend(v.get(name).map(str::to_string));
    }
    if let Some(auth) = v.get(vars::SCHEMA_REGISTRY_BASIC_AUTH) {
        out.push(auth.to_string());
        if let Some((_, password)) = auth.split_once(':') {
            out.push(password.to_string());
        }
    }
    if let Some(url) = v.get(vars::SCHEMA_REGISTRY_URL) {
        out.extend(url_password(url));
    }
    if let Some(jdbc) = v.get(vars::DATABRICKS_JDBC_URL) {
        for part in jdbc.split(';') {
            if let Some((k, value)) = part.split_once('=')
                && k.trim().eq_ignore_ascii_case("PWD")
            {
                out.push(value.trim().to_string());
            }
        }
    }
    out
}

fn url_password(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    let raw = parsed.password()?.to_string();
    Some(
        percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// `text` with every secret (and its percent-encoded form) replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut all: Vec<String> = Vec::with_capacity(secrets.len() * 2);
    for s in secrets.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        all.push(s.to_string());
        let encoded = percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        if encoded != s {
            all.push(encoded);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in &all {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests;
