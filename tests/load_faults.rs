//! Load under warehouse faults, end to end: stage → local S3 → load → a local SQL warehouse
//! of this test binary's own (started on a free port with its own tables and state, sharing
//! the local S3 server), whose fault injection API (`/_local/faults`, see
//! tools/local_warehouse/README.md) makes it answer 429 and 503, fail statements
//! transiently, run them slowly, or crash after a commit. Faults are global to a warehouse:
//! with one of our own, they never disturb other test binaries, and the tests here take
//! turns (one lock) and reset the faults before and after each test.
//!
//! What must hold: transient faults are retried and the load succeeds with the table exactly
//! right; a deadline cancels the running statement, reports the table's messages as failed
//! and deletes nothing, and a later delivery loads everything once; a crash between load and
//! delete, or of the warehouse after a commit, never loads a record twice.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use deltasink::load::loader::{LoadReport, Loader};
use deltasink::load::notifications::Announced;
use deltasink::store::S3Store;
use deltasink::warehouse::{ClientOptions, RetryPolicy, WarehouseClient};
use deltasink_tests::*;
use serde_json::{Value as Json, json};

type Client = Loader<S3Store, WarehouseClient>;

const T0: i64 = 1_700_000_000_000;

// ---- a local warehouse of our own --------------------------------------------------------------

/// Runs `"$@"` in the background and ends it when this wrapper gets SIGTERM or when the test
/// process (`$1`) is gone, so that a killed test run leaves no warehouse behind. Exits with
/// the warehouse's exit code.
const WRAPPER: &str = r#"
parent=$1; pidfile=$2; shift 2
"$@" &
child=$!
echo "$child" > "$pidfile"
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
( while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM "$child" 2>/dev/null ) &
watcher=$!
while :; do
  wait "$child"; rc=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
exit "$rc"
"#;

struct FaultWarehouse {
    port: u16,
    dir: tempfile::TempDir,
    /// The wrapper process of the running warehouse.
    child: Mutex<Option<Child>>,
}

impl FaultWarehouse {
    fn start() -> Result<FaultWarehouse> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::Builder::new()
            .prefix("deltasink-fault-warehouse-")
            .tempdir()?;
        let wh = FaultWarehouse {
            port,
            dir,
            child: Mutex::new(None),
        };
        wh.launch()?;
        Ok(wh)
    }

    fn host(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("warehouse.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts the warehouse process and waits until it answers.
    fn launch(&self) -> Result<()> {
        let root = repo_root();
        let python = std::env::var("DELTASINK_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".venv"))
            .join("bin/python");
        ensure!(
            python.exists(),
            "{} is missing: run scripts/venv.sh (scripts/services.sh start does)",
            python.display()
        );
        let token = std::env::var("DATABRICKS_TOKEN")
            .context("DATABRICKS_TOKEN is not set: run the tests with scripts/test.sh")?;
        s3_endpoint()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let dir = self.dir.path();
        let child = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg("fault-warehouse")
            .arg(std::process::id().to_string())
            .arg(dir.join("warehouse.pid"))
            .arg(&python)
            .args(["-m", "local_warehouse", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--root")
            .arg(dir.join("tables"))
            .arg("--state")
            .arg(dir.join("state"))
            .args(["--workers", "4"])
            .env("PYTHONPATH", root.join("tools"))
            .env("PYTHONUNBUFFERED", "1")
            .env("TZ", "UTC")
            .env("DATABRICKS_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the fault-injection warehouse")?;
        *self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(child);
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = self.http("GET", "/_local/health", None) {
                return Ok(());
            }
            if let Some(status) = self.exited()? {
                bail!(
                    "the fault-injection warehouse exited ({status}) while starting:\n{}",
                    self.log_tail()
                );
            }
            if started.elapsed() > Duration::from_secs(90) {
                bail!(
                    "the fault-injection warehouse did not answer on port {} within 90 s:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The wrapper's exit status once it has exited.
    fn exited(&self) -> Result<Option<std::process::ExitStatus>> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        match child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => bail!("not started"),
        }
    }

    /// Waits (up to `timeout`) for the process to exit by itself; then starts it again with
    /// the same port, tables and state (as `scripts/services.sh start` would after a crash).
    fn restart_after_exit(&self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.exited()? {
                break status;
            }
            ensure!(started.elapsed() < timeout, "the warehouse did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        self.launch()?;
        Ok(status)
    }

    /// Stops the process we started: SIGTERM to the wrapper (which ends the warehouse), then
    /// SIGKILL to both after 15 s.
    fn stop(&self) {
        let Ok(mut guard) = self.child.lock() else {
            return;
        };
        let Some(mut child) = guard.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while let Ok(None) = child.try_wait() {
                if started.elapsed() > Duration::from_secs(15) {
                    if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("warehouse.pid"))
                    {
                        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// One HTTP/1.1 request to the warehouse (blocking; loopback): status and JSON body.
    fn http(&self, method: &str, path: &str, body: Option<&Json>) -> Result<(u16, Json)> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let body = body.map(Json::to_string).unwrap_or_default();
        let auth = match (path.starts_with("/api/"), std::env::var("DATABRICKS_TOKEN")) {
            (true, Ok(token)) => format!("Authorization: Bearer {token}\r\n"),
            _ => String::new(),
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        let text = String::from_utf8_lossy(&reply);
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .context("no HTTP header end in the reply")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .context("no HTTP status")?
            .parse()?;
        let json = if rest.trim().is_empty() {
            Json::Null
        } else {
            serde_json::from_str(rest)?
        };
        Ok((status, json))
    }

    fn set_faults(&self, faults: Json) -> Result<()> {
        let (status, body) = self.http("POST", "/_local/faults", Some(&faults))?;
        ensure!(
            status == 200,
            "setting faults {faults}: HTTP {status} {body}"
        );
        Ok(())
    }

    fn faults(&self) -> Result<Json> {
        let (status, body) = self.http("GET", "/_local/faults", None)?;
        ensure!(status == 200, "reading faults: HTTP {status} {body}");
        Ok(body)
    }

    fn reset_faults(&self) -> Result<()> {
        let (status, body) = self.http("DELETE", "/_local/faults", None)?;
        ensure!(status == 200, "resetting faults: HTTP {status} {body}");
        Ok(())
    }

    /// A statement's state as the warehouse reports it (`GET .../statements/{id}`).
    fn statement_state(&self, id: &str) -> Result<String> {
        let (status, body) = self.http("GET", &format!("/api/2.0/sql/statements/{id}"), None)?;
        ensure!(status == 200, "statement {id}: HTTP {status} {body}");
        Ok(body["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}

impl Drop for FaultWarehouse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The warehouse of this test binary and the number of tests that use it: the first test
/// starts it, the last one to finish stops it.
static SHARED: Mutex<(usize, Option<Arc<FaultWarehouse>>)> = Mutex::new((0, None));
/// Faults are global to the warehouse: one test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test's use of the fault warehouse: holds the turn; resets the faults at the start and
/// (even when the test fails) at the end.
struct Session {
    wh: Arc<FaultWarehouse>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Session {
    async fn begin() -> Result<Session> {
        // Count ourselves in before waiting for the turn, so that the warehouse stays up
        // between tests that run one after the other.
        {
            let mut shared = SHARED.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            shared.0 += 1;
        }
        let turn = TURN.lock().await;
        let wh = {
            let mut shared = SHARED.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            match &shared.1 {
                Some(wh) => Ok(wh.clone()),
                None => match FaultWarehouse::start() {
                    Ok(wh) => {
                        let wh = Arc::new(wh);
                        shared.1 = Some(wh.clone());
                        Ok(wh)
                    }
                    Err(e) => {
                        shared.0 -= 1;
                        Err(e)
                    }
                },
            }
        }?;
        let session = Session { wh, _turn: turn };
        // A crashed warehouse (an earlier test failed mid-way) comes back first.
        if session.wh.exited()?.is_some() {
            session.wh.restart_after_exit(Duration::from_secs(1))?;
        }
        session.wh.reset_faults()?;
        Ok(session)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.wh.reset_faults();
        if let Ok(mut shared) = SHARED.lock() {
            shared.0 = shared.0.saturating_sub(1);
            if shared.0 == 0 {
                // The last user: the warehouse stops when the last Arc goes (ours, below).
                shared.1 = None;
            }
        }
    }
}

// ---- data ------------------------------------------------------------------------------------

/// `(id, op, name, score, lsn)`: one Debezium change of `shop.public.customers`.
type Cdc = (i64, &'static str, &'static str, i64, i64);

/// Debezium records for `changes`, all in partition 0 from `offset` on; also one plain JSON
/// click per change on the unkeyed topic `web.clicks` (an append table).
fn records(changes: &[Cdc], offset: i64) -> Vec<GenRecord> {
    let mut out = Vec::new();
    for (i, &(id, op, name, score, lsn)) in changes.iter().enumerate() {
        let offset = offset + i as i64;
        let img = json!({"id": id, "name": name, "score": score});
        let (before, after) = match op {
            "d" => (Some(&img), None),
            _ => (None, Some(&img)),
        };
        out.push(GenRecord {
            topic: "shop.public.customers".into(),
            partition: 0,
            offset,
            timestamp_ms: T0 + lsn,
            key: Some(json!({"id": id}).to_string().into_bytes()),
            value: Some(debezium_value(
                "customers",
                op,
                before,
                after,
                T0 + lsn,
                Some(lsn),
            )),
        });
        out.push(GenRecord {
            topic: "web.clicks".into(),
            partition: 0,
            offset,
            timestamp_ms: T0 + lsn,
            key: None,
            value: Some(
                json!({"click": offset, "user": id})
                    .to_string()
                    .into_bytes(),
            ),
        });
    }
    out
}

const BATCH_1: &[Cdc] = &[
    (1, "c", "ann", 1, 10),
    (2, "c", "bob", 2, 20),
    (3, "c", "cyd", 3, 30),
];
const BATCH_2: &[Cdc] = &[
    (1, "u", "ann", 11, 40),
    (2, "d", "bob", 2, 50),
    (4, "c", "dee", 4, 60),
    (3, "u", "cyd-2", 13, 70),
];

/// The customers table after both batches: `id → (name, score, deleted)`.
fn after_both() -> BTreeMap<i64, (String, i64, bool)> {
    [
        (1, ("ann".to_string(), 11, false)),
        (2, ("bob".to_string(), 2, true)),
        (3, ("cyd-2".to_string(), 13, false)),
        (4, ("dee".to_string(), 4, false)),
    ]
    .into_iter()
    .collect()
}

/// A test's own schema and bucket on the fault warehouse, batch 1 loaded (so that its loader
/// is warm: one MERGE per table and invocation) and batch 2 staged, not loaded.
struct Fixture {
    h: Harness,
    loader: Client,
    /// Batch 2's files, each in an SQS message of its own (message id = key).
    batch_2: Vec<Announced>,
}

async fn fixture(
    session: &Session,
    test: &str,
    options: ClientOptions,
    extra: &[(&str, &str)],
) -> Result<Fixture> {
    let h = Harness::new(test).await?;
    let loader = h.loader(Some(&session.wh.host()), options, extra)?;
    let (_, keys) = h.stage(&msk_event(&records(BATCH_1, 0))?, &[]).await?;
    let announced = keys.iter().map(|k| h.announce(k, k)).collect();
    let report = loader.load(announced, long_deadline()).await;
    check_loaded(&report).context("loading batch 1 without faults")?;
    let (_, keys) = h.stage(&msk_event(&records(BATCH_2, 100))?, &[]).await?;
    ensure!(keys.len() == 2, "one file per table: {keys:?}");
    let batch_2 = keys.iter().map(|k| h.announce(k, k)).collect();
    Ok(Fixture { h, loader, batch_2 })
}

impl Fixture {
    async fn customers(&self) -> Result<BTreeMap<i64, (String, i64, bool)>> {
        let rows = query(
            &self.loader.warehouse,
            &format!(
                "SELECT `id`, `name`, `score`, `_cdc_deleted` FROM {} ORDER BY `id`",
                self.h.table("customers")
            ),
        )
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let cell = |i: usize| r[i].clone().unwrap_or_default();
            let id: i64 = cell(0).parse()?;
            ensure!(
                out.insert(id, (cell(1), cell(2).parse()?, cell(3) == "true"))
                    .is_none(),
                "id {id} twice"
            );
        }
        Ok(out)
    }

    /// The append table's `(click, kafka offset)` rows, in order.
    async fn clicks(&self) -> Result<Vec<(i64, i64)>> {
        let rows = query(
            &self.loader.warehouse,
            &format!(
                "SELECT `click`, `_kafka_offset` FROM {} ORDER BY `click`, `_kafka_offset`",
                self.h.table("clicks")
            ),
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r[0].as_deref().context("NULL click")?.parse()?,
                    r[1].as_deref().context("NULL offset")?.parse()?,
                ))
            })
            .collect()
    }

    /// Both tables hold batches 1 and 2 exactly: customers per key, every click once.
    async fn assert_both_batches_loaded(&self) -> Result<()> {
        assert_eq!(self.customers().await?, after_both());
        let expected: Vec<(i64, i64)> = (0..3).chain(100..104).map(|o| (o, o)).collect();
        assert_eq!(self.clicks().await?, expected);
        Ok(())
    }

    fn message_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .batch_2
            .iter()
            .filter_map(|a| a.message_id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn assert_one_statement_per_table(report: &LoadReport) {
    assert_eq!(report.tables.len(), 2, "{report:?}");
    for t in &report.tables {
        assert_eq!((t.files, t.statements), (1, 1), "{report:?}");
    }
}

// ---- transient faults: retried, the load succeeds -------------------------------------------

#[tokio::test]
async fn http_429_twice_is_retried_after_retry_after_and_the_load_succeeds() -> Result<()> {
    let session = Session::begin().await?;
    let f = fixture(&session, "f429", ClientOptions::default(), &[]).await?;
    session.wh.set_faults(json!({"http_429": 2}))?;
    let started = Instant::now();
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    let took = started.elapsed();
    check_loaded(&report)?;
    assert_one_statement_per_table(&report);
    // Both 429s were served (to the first table's MERGE) and each one's Retry-After: 1 kept.
    assert_eq!(session.wh.faults()?["http_429"], 0);
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    f.assert_both_batches_loaded().await?;
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn http_503_once_is_retried_and_the_load_succeeds() -> Result<()> {
    let session = Session::begin().await?;
    let f = fixture(&session, "f503", ClientOptions::default(), &[]).await?;
    session.wh.set_faults(json!({"http_503": 1}))?;
    let started = Instant::now();
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    check_loaded(&report)?;
    assert_one_statement_per_table(&report);
    assert_eq!(session.wh.faults()?["http_503"], 0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    f.assert_both_batches_loaded().await?;
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_transiently_failed_merge_is_resubmitted_and_the_load_succeeds() -> Result<()> {
    let session = Session::begin().await?;
    let f = fixture(&session, "ftransient", ClientOptions::default(), &[]).await?;
    // The first table's MERGE ends FAILED / TEMPORARILY_UNAVAILABLE without running; a MERGE
    // is safe to repeat, so the client submits it again.
    session.wh.set_faults(json!({"fail_transient": 1}))?;
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    check_loaded(&report)?;
    assert_one_statement_per_table(&report);
    assert_eq!(session.wh.faults()?["fail_transient"], 0);
    f.assert_both_batches_loaded().await?;
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_statement_slower_than_wait_timeout_is_polled_until_it_succeeds() -> Result<()> {
    let session = Session::begin().await?;
    let options = ClientOptions {
        wait_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let f = fixture(&session, "fslow", options, &[]).await?;
    // The first MERGE runs 6.5 s: the submission returns RUNNING after its 5 s wait, the
    // client polls.
    session
        .wh
        .set_faults(json!({"delay_seconds": 6.5, "delay_statements": 1}))?;
    let started = Instant::now();
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    let took = started.elapsed();
    check_loaded(&report)?;
    assert_one_statement_per_table(&report);
    assert!(took >= Duration::from_millis(6_500), "took {took:?}");
    f.assert_both_batches_loaded().await?;
    Ok(())
}

// ---- partial failure ------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_schema_change_fails_only_its_tables_messages() -> Result<()> {
    let session = Session::begin().await?;
    let f = fixture(&session, "fpartial", ClientOptions::default(), &[]).await?;
    // Batch 3: clicks gain a column (ADD COLUMNS first: not safe to repeat, so the client does
    // not retry a transient failure of it); customers do not change shape.
    let mut recs = records(&[(5, "c", "eve", 5, 80)], 200);
    recs[1].value = Some(
        json!({"click": 200, "user": 5, "ref": "promo"})
            .to_string()
            .into_bytes(),
    );
    let (_, keys) = f.h.stage(&msk_event(&recs)?, &[]).await?;
    let mut announced = f.batch_2.clone();
    announced.extend(keys.iter().map(|k| f.h.announce(k, k)));
    let mut click_files: Vec<String> = announced
        .iter()
        .filter(|a| a.key.contains("clicks"))
        .map(|a| a.key.clone())
        .collect();
    click_files.sort();
    assert_eq!(click_files.len(), 2);

    // Tables load in name order: clicks (ADD COLUMNS fails) before customers (MERGE).
    session.wh.set_faults(json!({"fail_transient": 1}))?;
    let report = f.loader.load(announced.clone(), long_deadline()).await;
    assert_eq!(report.tables.len(), 2, "{report:?}");
    let by_table: BTreeMap<&str, _> = report
        .tables
        .iter()
        .map(|t| (t.table.rsplit('.').next().unwrap_or_default(), t))
        .collect();
    let error = by_table["clicks"].error.clone().unwrap_or_default();
    assert!(error.contains("TEMPORARILY_UNAVAILABLE"), "{report:?}");
    assert_eq!(
        by_table["clicks"].statements, 1,
        "ADD COLUMNS only: {report:?}"
    );
    assert!(by_table["customers"].error.is_none(), "{report:?}");
    let mut failed = report.failed_messages.clone();
    failed.sort();
    assert_eq!(
        failed, click_files,
        "exactly the clicks files' messages fail"
    );
    // The customers files are loaded and deleted; the clicks files stay for the retry.
    assert_eq!(f.h.staged().await?, click_files);
    let mut expected = after_both();
    expected.insert(5, ("eve".into(), 5, false));
    assert_eq!(f.customers().await?, expected);
    assert_eq!(f.clicks().await?.len(), 3, "clicks unchanged");

    // SQS delivers the failed messages again: they load.
    let retry: Vec<Announced> = announced
        .into_iter()
        .filter(|a| failed.contains(&a.key))
        .collect();
    check_loaded(&f.loader.load(retry, long_deadline()).await)?;
    let clicks: Vec<(i64, i64)> = (0..3)
        .chain(100..104)
        .chain([200])
        .map(|o| (o, o))
        .collect();
    assert_eq!(f.clicks().await?, clicks);
    let refs = query(
        &f.loader.warehouse,
        &format!(
            "SELECT `click`, `ref` FROM {} WHERE `ref` IS NOT NULL",
            f.h.table("clicks")
        ),
    )
    .await?;
    assert_eq!(refs, [[Some("200".to_string()), Some("promo".to_string())]]);
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}

// ---- the deadline ---------------------------------------------------------------------------

#[tokio::test]
async fn the_deadline_cancels_the_statement_fails_the_messages_and_a_later_load_succeeds()
-> Result<()> {
    let session = Session::begin().await?;
    let options = ClientOptions {
        cancel_margin: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let f = fixture(&session, "fdeadline", options, &[]).await?;
    // Every statement now takes 60 s; the invocation has 4 s left (cancel 1 s before).
    session.wh.set_faults(json!({"delay_seconds": 60}))?;
    let started = Instant::now();
    let report = f
        .loader
        .load(f.batch_2.clone(), Instant::now() + Duration::from_secs(4))
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}: {report:?}");
    // Both tables failed: the first by the cancel, the second had no time left to start.
    let mut failed = report.failed_messages.clone();
    failed.sort();
    assert_eq!(failed, f.message_ids(), "{report:?}");
    assert!(
        report.tables.iter().all(|t| t.error.is_some()),
        "{report:?}"
    );
    let first = report.tables[0].error.clone().unwrap_or_default();
    assert!(
        first.contains("deadline reached") && first.contains("the statement was canceled"),
        "{first}"
    );
    // The warehouse canceled it.
    let id = first
        .split("(statement ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .with_context(|| format!("no statement id in {first:?}"))?;
    assert_eq!(session.wh.statement_state(id)?, "CANCELED");
    // Nothing was deleted, nothing loaded.
    let mut staged: Vec<String> = f.batch_2.iter().map(|a| a.key.clone()).collect();
    staged.sort();
    assert_eq!(f.h.staged().await?, staged);
    session.wh.reset_faults()?;
    assert_eq!(f.customers().await?.len(), 3);
    assert_eq!(f.clicks().await?.len(), 3);

    // SQS delivers the messages again, to a warm instance and in time: everything loads once.
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    check_loaded(&report)?;
    f.assert_both_batches_loaded().await?;
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}

// ---- crashes --------------------------------------------------------------------------------

#[tokio::test]
async fn a_crash_between_load_and_delete_loads_nothing_twice() -> Result<()> {
    let session = Session::begin().await?;
    // Purge off stands for an invocation that crashed after its statements, before deleting.
    let f = fixture(
        &session,
        "fcrashdel",
        ClientOptions::default(),
        &[("DELTASINK_PURGE", "false")],
    )
    .await?;
    check_loaded(&f.loader.load(f.batch_2.clone(), long_deadline()).await)?;
    f.assert_both_batches_loaded().await?;
    let mut batch_2_files: Vec<String> = f.batch_2.iter().map(|a| a.key.clone()).collect();
    batch_2_files.sort();
    let staged = f.h.staged().await?;
    assert!(
        batch_2_files.iter().all(|k| staged.contains(k)),
        "purge off keeps the files: {staged:?}"
    );

    // SQS delivers the messages again to another (cold) instance, purge on.
    let other =
        f.h.loader(Some(&session.wh.host()), ClientOptions::default(), &[])?;
    let report = other.load(f.batch_2.clone(), long_deadline()).await;
    check_loaded(&report)?;
    for t in &report.tables {
        // DESCRIBE, then the MERGE that changes nothing.
        assert_eq!(
            (t.files, t.already_loaded, t.statements),
            (1, 0, 2),
            "{report:?}"
        );
    }
    f.assert_both_batches_loaded().await?;
    let staged = f.h.staged().await?;
    assert!(
        batch_2_files.iter().all(|k| !staged.contains(k)),
        "batch 2's files are deleted: {staged:?}"
    );
    // A third delivery finds them gone: loaded and purged, nothing to do.
    let report = other.load(f.batch_2.clone(), long_deadline()).await;
    check_loaded(&report)?;
    for t in &report.tables {
        assert_eq!(
            (t.files, t.already_loaded, t.statements),
            (1, 1, 0),
            "{report:?}"
        );
    }
    f.assert_both_batches_loaded().await?;
    Ok(())
}

#[tokio::test]
async fn a_warehouse_crash_after_the_commit_is_retried_without_duplicates() -> Result<()> {
    let session = Session::begin().await?;
    let options = ClientOptions {
        // Enough attempts to outlast a warehouse restart (about 2–3 s).
        retry: RetryPolicy {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(2),
            max_attempts: 16,
        },
        ..ClientOptions::default()
    };
    let f = fixture(&session, "fcrashwh", options, &[]).await?;
    // The next statement (the clicks MERGE: tables load in name order) commits, then the
    // warehouse process exits before answering.
    session.wh.set_faults(json!({"crash_after_next": true}))?;
    let wh = session.wh.clone();
    let restarter =
        tokio::task::spawn_blocking(move || wh.restart_after_exit(Duration::from_secs(60)));
    let report = f.loader.load(f.batch_2.clone(), long_deadline()).await;
    let status = restarter.await??;
    assert_eq!(status.code(), Some(70), "the warehouse crashed as injected");
    check_loaded(&report)?;
    assert_one_statement_per_table(&report);
    // The resubmitted MERGE found the committed rows: every click once.
    f.assert_both_batches_loaded().await?;
    assert_eq!(f.h.staged().await?, Vec::<String>::new());
    Ok(())
}
