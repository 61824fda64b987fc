//! deltasink: Kafka change data into Databricks Delta Lake.
//!
//! Every piece of logic the three Lambda functions share lives here; the binaries in
//! `functions/` only wire configuration, clients and handlers. The stage flow through the
//! modules is: [`kafka`] (event) → [`decode`] → [`route`] → [`rows`] (CDC rows with metadata)
//! → [`encode`] (Arrow/Parquet) → [`staging`] (keys) → [`store`] (S3).

pub mod allocator;
pub mod check;
pub mod config;
pub mod decode;
pub mod encode;
pub mod invocation;
pub mod kafka;
pub mod load;
pub mod maintain;
pub mod metrics;
pub mod plan;
pub mod registry;
pub mod route;
pub mod rows;
pub mod secrets;
pub mod sql;
pub mod stage;
pub mod staging;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_support;
pub mod value;
pub mod warehouse;
