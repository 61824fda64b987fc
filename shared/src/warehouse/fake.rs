//! A scripted [`StatementExecutor`] for tests of the logic above the warehouse.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use super::{Idempotency, Param, StatementExecutor, StatementResult, WarehouseError};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStatement {
    pub sql: String,
    pub params: Vec<Param>,
    pub idempotency: Idempotency,
}

/// Answers statements from a queue (an empty result when the queue is empty) and records
/// every call.
#[derive(Debug, Default)]
pub struct FakeExecutor {
    answers: Mutex<VecDeque<Result<StatementResult, WarehouseError>>>,
    calls: Mutex<Vec<RecordedStatement>>,
}

impl FakeExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push_ok(&self, result: StatementResult) {
        if let Ok(mut a) = self.answers.lock() {
            a.push_back(Ok(result));
        }
    }

    pub fn push_err(&self, error: WarehouseError) {
        if let Ok(mut a) = self.answers.lock() {
            a.push_back(Err(error));
        }
    }

    pub fn calls(&self) -> Vec<RecordedStatement> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl StatementExecutor for FakeExecutor {
    async fn execute(
        &self,
        sql: &str,
        params: &[Param],
        idempotency: Idempotency,
        _deadline: Instant,
    ) -> Result<StatementResult, WarehouseError> {
        let n = match self.calls.lock() {
            Ok(mut calls) => {
                calls.push(RecordedStatement {
                    sql: sql.to_string(),
                    params: params.to_vec(),
                    idempotency,
                });
                calls.len()
            }
            Err(_) => 0,
        };
        let next = self.answers.lock().ok().and_then(|mut a| a.pop_front());
        next.unwrap_or_else(|| {
            Ok(StatementResult {
                statement_id: format!("fake-{n}"),
                ..StatementResult::default()
            })
        })
    }
}
