//! The maintain Lambda: on an EventBridge schedule, re-drive stranded staged files, purge
//! staging, retire tombstones and run backfills; `{"job": "optimize"}` on a slower schedule;
//! `{"job": "check"}` to check a deployment. Wiring only: the logic is in
//! `deltasink::maintain` and `deltasink::check`.
//!
//! Run by hand with the same variables: `maintain <job>...` (e.g. `maintain purge`,
//! `maintain check`) runs the jobs once, prints the report and exits non-zero on failure.

// The handler's future nests the maintainer, the loader and reqwest deeply (see load).
#![recursion_limit = "256"]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltasink::check;
use deltasink::config::MaintainConfig;
use deltasink::invocation;
use deltasink::maintain::{Job, Maintainer, SystemClock};
use deltasink::store::S3Store;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value as Json, json};

#[global_allocator]
static GLOBAL: deltasink::allocator::MiMalloc = deltasink::allocator::MiMalloc;

type Maintain = Maintainer<S3Store, WarehouseClient, SystemClock>;

/// The time a run by hand may take.
const CLI_BUDGET: Duration = Duration::from_secs(15 * 60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    deltasink::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let vars = invocation::with_secrets(std::env::vars().collect()).await?;
    if !args.is_empty() {
        return by_hand(&args, &vars).await;
    }
    let maintainer = Arc::new(build(&vars).await?);
    let vars = Arc::new(vars);
    let emit_metrics = invocation::emits_metrics(&vars);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Json>| {
        let maintainer = maintainer.clone();
        let vars = vars.clone();
        async move { handle(&maintainer, &vars, event, emit_metrics).await }
    }))
    .await
}

async fn build(vars: &HashMap<String, String>) -> Result<Maintain, Error> {
    let config = invocation::logged(MaintainConfig::from_vars(vars))?;
    let warehouse = WarehouseClient::new(
        config.load.connection.clone(),
        config.load.credentials.clone(),
        ClientOptions::default(),
    )?;
    let store = S3Store::from_env().await;
    Ok(Maintainer::new(config, store, warehouse, SystemClock))
}

async fn handle(
    maintainer: &Maintain,
    vars: &HashMap<String, String>,
    event: LambdaEvent<Json>,
    emit_metrics: bool,
) -> Result<Json, Error> {
    let jobs = Job::from_input(&event.payload)?;
    let deadline = invocation::deadline(
        event.context.deadline,
        maintainer.config.load.deadline_margin,
    );
    run(maintainer, vars, &jobs, deadline, emit_metrics).await
}

/// Runs `jobs`; the invocation fails (and the error alarm fires) when one of them failed.
async fn run(
    maintainer: &Maintain,
    vars: &HashMap<String, String>,
    jobs: &[Job],
    deadline: Instant,
    emit_metrics: bool,
) -> Result<Json, Error> {
    let mut out = serde_json::Map::new();
    let mut failed: Vec<String> = Vec::new();
    if jobs.contains(&Job::Check) {
        let report = check(maintainer, vars, deadline).await;
        if !report.ok() {
            failed.push(format!("check: {}", report.render()));
        }
        out.insert("check".into(), serde_json::to_value(&report)?);
    }
    let report = maintainer.run(jobs, deadline).await;
    if emit_metrics {
        deltasink::metrics::emit(&report.metrics());
    }
    failed.extend(report.errors.iter().cloned());
    out.insert("jobs".into(), serde_json::to_value(&report)?);
    if failed.is_empty() {
        Ok(Json::Object(out))
    } else {
        for f in &failed {
            tracing::error!("{f}");
        }
        Err(format!(
            "maintain: {} failure(s): {}",
            failed.len(),
            failed.join("; ")
        )
        .into())
    }
}

/// The deployment check with this warm instance's clients (the configuration already parsed,
/// or the function would not have started).
async fn check(
    maintainer: &Maintain,
    vars: &HashMap<String, String>,
    deadline: Instant,
) -> check::CheckReport {
    let (config_checks, _, stage) = check::check_config(vars, check::StageCheck::Auto);
    let loader = &maintainer.loader;
    let mut inputs = check::CheckInputs::new(&loader.store, &loader.config.state_prefix, deadline)
        .with_load(&loader.config)
        .with_warehouse(&loader.warehouse);
    if let Some(stage) = &stage {
        inputs = inputs.with_stage(stage);
    }
    inputs.secrets = check::secrets_in_vars(vars);
    check::run(config_checks, inputs).await
}

/// `maintain <job>...`: one run with the process environment, report on stdout. `check` runs
/// first and on its own terms: a configuration error is one of its findings, not a crash.
async fn by_hand(args: &[String], vars: &HashMap<String, String>) -> Result<(), Error> {
    let jobs = Job::from_input(&json!({ "jobs": args }))?;
    let deadline = Instant::now() + CLI_BUDGET;
    if jobs.contains(&Job::Check) {
        let store = S3Store::from_env().await;
        let report = check::check_vars(vars, &store, &check::CheckOptions::new(deadline)).await;
        println!("{}", report.render());
        if !report.ok() {
            return Err("some checks failed (see above)".into());
        }
    }
    let others: Vec<Job> = jobs.into_iter().filter(|j| *j != Job::Check).collect();
    if others.is_empty() {
        return Ok(());
    }
    let maintainer = build(vars).await?;
    let report = run(&maintainer, vars, &others, deadline, false).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
