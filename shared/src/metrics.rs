//! Metrics in CloudWatch Embedded Metric Format (EMF): one JSON line per invocation, printed
//! to stdout, from which CloudWatch Logs extracts the metrics (namespace `deltasink`,
//! dimension `Function` = `stage` | `load` | `maintain`).
//!
//! [`Metrics`] is a pure builder: each function's report turns itself into one (`reports.rs`)
//! ([`StageSummary::metrics`](crate::stage::StageSummary::metrics),
//! [`LoadReport::metrics`](crate::load::loader::LoadReport::metrics),
//! [`MaintainReport::metrics`](crate::maintain::MaintainReport::metrics)), and the binary
//! prints it with [`emit`] when it runs in Lambda. The library itself never prints.
//!
//! Metric names are written in code only (`&'static str`), never taken from data, so a line
//! holds nothing but the function name, metric names and numbers.
//!
//! Retries of the warehouse client are counted per invocation through a task-local counter:
//! [`count_retries`] wraps the work, the client's retry loops call `note_retry`.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;

use serde_json::{Map, Value as Json, json};

mod reports;

/// The CloudWatch namespace of every deltasink metric.
pub const NAMESPACE: &str = "deltasink";

/// The dimension every line carries.
pub const FUNCTION_DIMENSION: &str = "Function";

/// The EMF units deltasink uses (a subset of CloudWatch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    /// The unit as EMF spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One invocation's metrics for one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    function: &'static str,
    values: Vec<(&'static str, Unit, u64)>,
}

impl Metrics {
    /// Metrics of `function` (`stage`, `load` or `maintain`), the `Function` dimension.
    pub fn new(function: &'static str) -> Self {
        Metrics {
            function,
            values: Vec::new(),
        }
    }

    /// A value in `unit`; `None` (not known) adds nothing. A name given twice keeps the last
    /// value (an EMF document holds each metric once).
    pub fn metric(mut self, name: &'static str, unit: Unit, value: impl Into<Option<u64>>) -> Self {
        if let Some(value) = value.into() {
            match self.values.iter_mut().find(|(n, _, _)| *n == name) {
                Some(slot) => *slot = (name, unit, value),
                None => self.values.push((name, unit, value)),
            }
        }
        self
    }

    /// A `Count` metric (`None`: not known, not emitted).
    pub fn count(self, name: &'static str, value: impl Into<Option<u64>>) -> Self {
        self.metric(name, Unit::Count, value)
    }

    /// A `Bytes` metric.
    pub fn bytes(self, name: &'static str, value: impl Into<Option<u64>>) -> Self {
        self.metric(name, Unit::Bytes, value)
    }

    /// A `Milliseconds` metric.
    pub fn millis(self, name: &'static str, value: impl Into<Option<u64>>) -> Self {
        self.metric(name, Unit::Milliseconds, value)
    }

    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The value of metric `name`, if set.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| *v)
    }

    /// The unit of metric `name`, if set.
    pub fn unit(&self, name: &str) -> Option<Unit> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, u, _)| *u)
    }

    /// The metric names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.values.iter().map(|(n, _, _)| *n)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The EMF document (one JSON object) for these metrics at `timestamp_ms` (ms since the
    /// epoch): `_aws.Timestamp`, one metric directive with the `[["Function"]]` dimension
    /// set, the `Function` value and every metric's value at the top level.
    pub fn to_emf(&self, timestamp_ms: i64) -> Json {
        let definitions: Vec<Json> = self
            .values
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[FUNCTION_DIMENSION]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(FUNCTION_DIMENSION.into(), Json::from(self.function));
        for (name, _, value) in &self.values {
            root.insert((*name).into(), Json::from(*value));
        }
        Json::Object(root)
    }

    /// [`Metrics::to_emf`] as one line of JSON (no newline).
    pub fn to_emf_line(&self, timestamp_ms: i64) -> String {
        self.to_emf(timestamp_ms).to_string()
    }
}

/// Writes the EMF line of `metrics` at `timestamp_ms` to `out`; nothing for empty metrics.
pub fn write_emf(
    metrics: &Metrics,
    timestamp_ms: i64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    let mut line = metrics.to_emf_line(timestamp_ms);
    line.push('\n');
    // One write of the whole line, so that it never interleaves with a log line.
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// Prints the EMF line of `metrics` to stdout (CloudWatch Logs in Lambda), stamped now.
/// Call it once per invocation from the binary, only when running in Lambda: a local run has
/// no use for the line. A failed write is ignored (metrics never fail an invocation).
pub fn emit(metrics: &Metrics) {
    let now = chrono::Utc::now().timestamp_millis();
    let _ = write_emf(metrics, now, &mut std::io::stdout().lock());
}

/// `later - earlier` in milliseconds, 0 when `later` is before `earlier` (clock skew between
/// the producer and Lambda), `None` when either is unknown.
pub fn lag_ms(later: Option<i64>, earlier: Option<i64>) -> Option<u64> {
    let (later, earlier) = (later?, earlier?);
    Some(u64::try_from(later.saturating_sub(earlier)).unwrap_or(0))
}

/// `usize` → metric value.
pub(crate) fn n(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

tokio::task_local! {
    static RETRIES: Cell<u64>;
}

/// Runs `work` counting the warehouse client's retries made inside it (statements submitted
/// again, polls and result fetches tried again). Nested calls count their own retries and
/// add them to the enclosing count.
pub async fn count_retries<F: Future>(work: F) -> (F::Output, u64) {
    let (out, retries) = RETRIES
        .scope(Cell::new(0), async {
            let out = work.await;
            (out, RETRIES.try_with(Cell::get).unwrap_or(0))
        })
        .await;
    let _ = RETRIES.try_with(|outer| outer.set(outer.get().saturating_add(retries)));
    (out, retries)
}

/// Counts one retry in the enclosing [`count_retries`], if any.
pub(crate) fn note_retry() {
    let _ = RETRIES.try_with(|c| c.set(c.get().saturating_add(1)));
}

#[cfg(test)]
mod tests;
