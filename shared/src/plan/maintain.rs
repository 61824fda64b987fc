//! Statements of the maintain function.

use super::{PlanError, TableRef};
use crate::rows;
use crate::sql::quote_ident;

/// `DELETE FROM <table> WHERE `_cdc_deleted` = true AND `_cdc_ts` < :<cutoff_param>`: removes
/// the tombstones of an upsert table older than the retention window. The cutoff timestamp
/// travels as the named statement parameter `cutoff_param` (type TIMESTAMP), never in the text.
///
/// Once a tombstone is gone, a change older than it that arrives later can bring the row back:
/// the retention window must exceed the longest possible delivery delay.
pub fn hard_delete_tombstones(table: &TableRef, cutoff_param: &str) -> Result<String, PlanError> {
    let valid = cutoff_param
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cutoff_param
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(PlanError::BadParameterName {
            name: cutoff_param.to_string(),
        });
    }
    Ok(format!(
        "DELETE FROM {} WHERE {} = true AND {} < :{cutoff_param}",
        table.sql(),
        quote_ident(rows::CDC_DELETED),
        quote_ident(rows::CDC_TS),
    ))
}

/// `OPTIMIZE <table>`: compacts the small files that frequent loads leave behind.
pub fn optimize(table: &TableRef) -> String {
    format!("OPTIMIZE {}", table.sql())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_are_checked() {
        let t = TableRef::new("t");
        assert_eq!(
            hard_delete_tombstones(&t, "cutoff").unwrap(),
            "DELETE FROM `t` WHERE `_cdc_deleted` = true AND `_cdc_ts` < :cutoff"
        );
        for bad in ["", "1x", "a-b", "a b", "x;DROP"] {
            assert!(hard_delete_tombstones(&t, bad).is_err(), "{bad:?}");
        }
    }
}
