//! `check` end to end, against the local services (`scripts/services.sh start`): the local S3
//! server, the local SQL warehouse and the local schema registry.
//!
//! A good setup passes every check; each broken setting fails its own check with the right
//! fix, and every other check still runs and passes.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use deltasink::check::{CheckOptions, CheckReport, check_vars, names};
use deltasink::config::{LoadConfig, vars};
use deltasink::store::ObjectStore;
use deltasink::warehouse::{ClientOptions, WarehouseClient};
use deltasink_tests::*;

/// A bucket and an existing, empty schema of the test's own, and the variables of a good
/// setup: load settings for the local warehouse plus the local schema registry (a stage-only
/// variable, so the stage settings are checked too).
struct Setup {
    harness: Harness,
    vars: HashMap<String, String>,
}

impl Setup {
    async fn new(test: &str) -> Result<Setup> {
        let harness = Harness::new(test).await?;
        let mut vars = harness.load_vars(None, &[])?;
        vars.insert(vars::SCHEMA_REGISTRY_URL.into(), registry_url()?);
        // The local warehouse creates schemas only with CREATE SCHEMA or a table in them.
        let config = LoadConfig::from_vars(&vars)?;
        let client = WarehouseClient::new(
            config.connection.clone(),
            config.credentials.clone(),
            ClientOptions::default(),
        )?;
        query(
            &client,
            &format!("CREATE SCHEMA IF NOT EXISTS `main`.`{}`", harness.schema),
        )
        .await?;
        Ok(Setup { harness, vars })
    }

    /// Runs the check with the good variables changed by `changes`.
    async fn check(&self, changes: &[(&str, &str)]) -> Result<CheckReport> {
        let mut vars = self.vars.clone();
        for (k, v) in changes {
            vars.insert(k.to_string(), v.to_string());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let report = check_vars(&vars, &self.harness.store, &CheckOptions::new(deadline)).await;
        println!("{}", report.render());
        Ok(report)
    }

    async fn drop_schema(&self) {
        if let Ok(config) = LoadConfig::from_vars(&self.vars)
            && let Ok(client) = WarehouseClient::new(
                config.connection.clone(),
                config.credentials.clone(),
                ClientOptions::default(),
            )
        {
            let _ = query(
                &client,
                &format!("DROP SCHEMA IF EXISTS `main`.`{}`", self.harness.schema),
            )
            .await;
        }
    }
}

/// Every check but `failing` passed (and was not skipped); `failing` failed with a fix.
fn only_failing(report: &CheckReport, failing: &str) -> Result<()> {
    for c in &report.checks {
        if c.name == failing {
            ensure!(
                !c.ok && !c.skipped && c.fix.is_some(),
                "{failing} should fail: {c:?}"
            );
        } else if c.name == names::CATALOG_SCHEMA && failing == names::WAREHOUSE {
            ensure!(
                !c.ok && c.skipped,
                "the schema check needs the warehouse: {c:?}"
            );
        } else {
            ensure!(c.ok && !c.skipped, "{} should pass: {c:?}", c.name);
        }
    }
    ensure!(!report.ok());
    Ok(())
}

fn closed_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::test]
async fn good_setup_passes_every_check_and_leaves_no_probe() -> Result<()> {
    let setup = Setup::new("check_good").await?;
    let report = setup.check(&[]).await?;
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            names::CONFIGURATION,
            names::STAGE_CONFIGURATION,
            names::BUCKET,
            names::WAREHOUSE,
            names::CATALOG_SCHEMA,
            names::REGISTRY,
        ]
    );
    for c in &report.checks {
        ensure!(c.ok && !c.skipped, "{c:?}");
    }
    assert!(report.ok());
    let probe = &report
        .get(names::BUCKET)
        .map(|c| c.detail.clone())
        .unwrap_or_default();
    ensure!(probe.contains("_deltasink/check/probe-"), "{probe}");
    let left = setup.harness.store.list(&setup.harness.bucket, "").await?;
    ensure!(left.is_empty(), "the probe was left behind: {left:?}");
    let json = serde_json::to_value(&report)?;
    assert_eq!(json["ok"], true);
    setup.drop_schema().await;
    Ok(())
}

#[tokio::test]
async fn missing_bucket_fails_the_bucket_check_with_create_it() -> Result<()> {
    let setup = Setup::new("check_nobucket").await?;
    let missing = format!("{}-missing", setup.harness.bucket);
    let report = setup.check(&[(vars::STAGING_BUCKET, &missing)]).await?;
    only_failing(&report, names::BUCKET)?;
    let c = report.get(names::BUCKET).expect("bucket check");
    assert_eq!(
        c.detail,
        format!("bucket {missing} does not exist (PutObject: NoSuchBucket)")
    );
    ensure!(
        c.fix
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("create the bucket {missing}")),
        "{c:?}"
    );
    setup.drop_schema().await;
    Ok(())
}

#[tokio::test]
async fn wrong_token_fails_the_warehouse_check_and_is_never_shown() -> Result<()> {
    let setup = Setup::new("check_token").await?;
    let wrong = "dapi-wrong-token-for-the-check-e2e";
    let report = setup.check(&[(vars::DATABRICKS_TOKEN, wrong)]).await?;
    only_failing(&report, names::WAREHOUSE)?;
    let c = report.get(names::WAREHOUSE).expect("warehouse check");
    ensure!(c.detail.contains("refused the credentials"), "{c:?}");
    ensure!(c.detail.contains("HTTP 403"), "{c:?}");
    ensure!(
        c.fix
            .as_deref()
            .unwrap_or_default()
            .contains("DATABRICKS_TOKEN"),
        "{c:?}"
    );
    let everything = format!("{}{}", report.render(), serde_json::to_string(&report)?);
    ensure!(!everything.contains(wrong), "the token shows: {everything}");
    ensure!(
        !everything.contains(&std::env::var("DATABRICKS_TOKEN")?),
        "the good token shows"
    );
    setup.drop_schema().await;
    Ok(())
}

#[tokio::test]
async fn wrong_schema_fails_the_schema_check_with_create_schema() -> Result<()> {
    let setup = Setup::new("check_schema").await?;
    let missing = format!("{}_missing", setup.harness.schema);
    let report = setup.check(&[(vars::SCHEMA, &missing)]).await?;
    only_failing(&report, names::CATALOG_SCHEMA)?;
    let c = report.get(names::CATALOG_SCHEMA).expect("schema check");
    ensure!(
        c.detail
            .starts_with(&format!("schema `main`.`{missing}` does not exist")),
        "{c:?}"
    );
    ensure!(
        c.fix
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("CREATE SCHEMA IF NOT EXISTS `main`.`{missing}`")),
        "{c:?}"
    );
    setup.drop_schema().await;
    Ok(())
}

#[tokio::test]
async fn registry_on_a_closed_port_fails_the_registry_check() -> Result<()> {
    let setup = Setup::new("check_registry").await?;
    let url = format!("http://127.0.0.1:{}", closed_port()?);
    let report = setup.check(&[(vars::SCHEMA_REGISTRY_URL, &url)]).await?;
    only_failing(&report, names::REGISTRY)?;
    let c = report.get(names::REGISTRY).expect("registry check");
    ensure!(
        c.detail.starts_with(&format!("{url} cannot be reached")),
        "{c:?}"
    );
    ensure!(
        c.fix
            .as_deref()
            .unwrap_or_default()
            .contains("DELTASINK_SCHEMA_REGISTRY_URL"),
        "{c:?}"
    );
    setup.drop_schema().await;
    Ok(())
}

#[tokio::test]
async fn configuration_error_is_reported_and_the_bucket_and_registry_still_checked() -> Result<()> {
    let setup = Setup::new("check_config").await?;
    let report = setup
        .check(&[(
            vars::DATABRICKS_HTTP_PATH,
            "/sql/protocolv1/o/1/0123-456789-abc",
        )])
        .await?;
    let get = |n: &str| report.get(n).cloned().expect("check");
    let config = get(names::CONFIGURATION);
    ensure!(
        !config.ok && config.detail.starts_with("DATABRICKS_HTTP_PATH:"),
        "{config:?}"
    );
    ensure!(get(names::BUCKET).ok && get(names::REGISTRY).ok);
    ensure!(!get(names::WAREHOUSE).ok && get(names::WAREHOUSE).skipped);
    setup.drop_schema().await;
    Ok(())
}
