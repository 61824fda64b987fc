//! The load function: staged files → Delta table rows through a SQL warehouse.

pub mod footer;
pub mod loader;
pub mod notifications;

use serde_json::{Value as Json, json};

/// The function's answer. For SQS triggers it is the partial batch response
/// (`batchItemFailures`): the messages of tables that did not load, and unreadable messages,
/// go back to the queue (and to its dead-letter queue after `maxReceiveCount`); the others are
/// deleted. Direct S3 and EventBridge invocations fail as a whole instead (`Err`), so that
/// Lambda's own retry applies.
pub fn response(
    notifications: &notifications::Notifications,
    report: &loader::LoadReport,
    from_sqs: bool,
) -> Result<Json, String> {
    let mut failed: Vec<&str> = report.failed_messages.iter().map(String::as_str).collect();
    for (id, _) in &notifications.unreadable {
        if !failed.contains(&id.as_str()) {
            failed.push(id);
        }
    }
    if from_sqs {
        let items: Vec<Json> = failed
            .iter()
            .map(|id| json!({"itemIdentifier": id}))
            .collect();
        return Ok(json!({"batchItemFailures": items, "report": report}));
    }
    match report.tables.iter().find_map(|t| t.error.as_ref()) {
        Some(error) => Err(error.clone()),
        None => Ok(json!({"report": report})),
    }
}
