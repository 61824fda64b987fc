#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tests of the EMF lines and of each report's metrics.

use super::*;

const UNITS: [&str; 3] = ["Count", "Bytes", "Milliseconds"];

/// Checks `line` against the EMF specification: a JSON object with `_aws.Timestamp` (a
/// number), `_aws.CloudWatchMetrics` directives whose dimension and metric names all
/// resolve to top-level members (dimension values strings, metric values numbers), at
/// most 100 metrics and 30 dimensions per set, known units. Returns the parsed line.
fn check_emf(line: &str) -> Json {
    assert!(!line.contains('\n'), "one line: {line}");
    let doc: Json = serde_json::from_str(line).expect("valid JSON");
    let root = doc.as_object().expect("a JSON object");
    let aws = root["_aws"].as_object().expect("_aws object");
    assert!(aws["Timestamp"].is_i64(), "Timestamp: {line}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
    assert!(!directives.is_empty());
    for d in directives {
        assert_eq!(d["Namespace"], NAMESPACE);
        for set in d["Dimensions"].as_array().expect("dimension sets") {
            let set = set.as_array().expect("a dimension set");
            assert!(set.len() <= 30);
            for key in set {
                let key = key.as_str().expect("dimension key");
                assert!(root[key].is_string(), "dimension {key} has a string value");
            }
        }
        let metrics = d["Metrics"].as_array().expect("metric definitions");
        assert!(metrics.len() <= 100);
        for m in metrics {
            let name = m["Name"].as_str().expect("Name");
            assert!(!name.is_empty() && name.len() <= 255);
            assert!(UNITS.contains(&m["Unit"].as_str().expect("Unit")), "{m}");
            assert!(root[name].is_u64(), "metric {name} has a value: {line}");
        }
    }
    doc
}

#[test]
fn metrics_line_follows_the_emf_specification() {
    let m = Metrics::new("load")
        .count("FilesLoaded", 3)
        .count("RowsInserted", Some(10))
        .count("RowsUpdated", None)
        .millis("CommitLagMs", 1234)
        .bytes("BytesIn", 99);
    let line = m.to_emf_line(1_800_000_000_123);
    let doc = check_emf(&line);
    assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_123_i64);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"]])
    );
    assert_eq!(doc["Function"], "load");
    assert_eq!(doc["FilesLoaded"], 3);
    assert_eq!(doc["RowsInserted"], 10);
    assert_eq!(doc["CommitLagMs"], 1234);
    assert_eq!(doc["BytesIn"], 99);
    // Unknown values are neither declared nor given.
    assert!(doc.get("RowsUpdated").is_none());
    let declared: Vec<(&str, &str)> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
        .collect();
    assert_eq!(
        declared,
        [
            ("FilesLoaded", "Count"),
            ("RowsInserted", "Count"),
            ("CommitLagMs", "Milliseconds"),
            ("BytesIn", "Bytes"),
        ]
    );
    // Nothing but the envelope, the dimension and the metrics.
    assert_eq!(doc.as_object().unwrap().len(), 2 + declared.len());
}

#[test]
fn metrics_names_given_twice_keep_the_last_value() {
    let m = Metrics::new("stage")
        .count("RecordsIn", 1)
        .count("RecordsIn", 2);
    assert_eq!(m.get("RecordsIn"), Some(2));
    assert_eq!(m.names().count(), 1);
    check_emf(&m.to_emf_line(0));
}

#[test]
fn metrics_empty_write_nothing_and_lines_end_with_a_newline() {
    let mut out = Vec::new();
    write_emf(&Metrics::new("maintain"), 1, &mut out).unwrap();
    assert!(out.is_empty());
    write_emf(
        &Metrics::new("maintain").count("FilesPurged", 0),
        1,
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
    let doc = check_emf(text.trim_end());
    assert_eq!(doc["FilesPurged"], 0);
}

#[test]
fn metrics_lag_is_never_negative() {
    assert_eq!(lag_ms(Some(5_000), Some(1_000)), Some(4_000));
    assert_eq!(lag_ms(Some(1_000), Some(5_000)), Some(0));
    assert_eq!(lag_ms(None, Some(1)), None);
    assert_eq!(lag_ms(Some(1), None), None);
}

/// Every string in an EMF line is the function, a metric or dimension name, a unit or
/// the namespace: nothing from data, configuration or credentials.
fn assert_only_known_strings(doc: &Json, metrics: &Metrics) {
    fn strings<'a>(v: &'a Json, out: &mut Vec<&'a str>) {
        match v {
            Json::String(s) => out.push(s),
            Json::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Json::Object(o) => o.iter().for_each(|(k, v)| {
                out.push(k);
                strings(v, out)
            }),
            _ => {}
        }
    }
    let mut found = Vec::new();
    strings(doc, &mut found);
    let envelope = [
        "_aws",
        "Timestamp",
        "CloudWatchMetrics",
        "Namespace",
        "Dimensions",
        "Metrics",
        "Name",
        "Unit",
        NAMESPACE,
        FUNCTION_DIMENSION,
    ];
    for s in found {
        assert!(
            envelope.contains(&s)
                || UNITS.contains(&s)
                || s == metrics.function()
                || metrics.names().any(|n| n == s),
            "unexpected string {s:?} in {doc}"
        );
    }
}

#[test]
fn metrics_of_a_stage_summary() {
    use crate::stage::StageSummary;
    let summary = StageSummary {
        records: 41,
        input_bytes: 9_000,
        rows_staged: 39,
        files_staged: 2,
        records_to_errors: 1,
        tombstones_skipped: 2,
        keys: vec!["staging/secret-looking-key.parquet".into()],
        oldest_timestamp_ms: Some(1_000),
        staged_at_ms: Some(6_000),
    };
    let m = summary.metrics();
    let expected = [
        ("RecordsIn", Unit::Count, 41),
        ("BytesIn", Unit::Bytes, 9_000),
        ("RowsStaged", Unit::Count, 39),
        ("FilesStaged", Unit::Count, 2),
        ("RecordsToErrors", Unit::Count, 1),
        ("StageLagMs", Unit::Milliseconds, 5_000),
    ];
    for (name, unit, value) in expected {
        assert_eq!(
            (m.unit(name), m.get(name)),
            (Some(unit), Some(value)),
            "{name}"
        );
    }
    assert_eq!(m.names().count(), expected.len());
    let doc = check_emf(&m.to_emf_line(7_000));
    assert_eq!(doc["Function"], "stage");
    assert_only_known_strings(&doc, &m);
    // A planned (not staged) batch has no lag.
    let planned = StageSummary {
        staged_at_ms: None,
        ..summary
    };
    assert_eq!(planned.metrics().get("StageLagMs"), None);
}

#[test]
fn metrics_of_a_load_report() {
    use crate::load::loader::{LoadReport, RowCounts, TableOutcome, Unloadable};
    let table = |name: &str| TableOutcome {
        table: name.into(),
        files: 0,
        already_loaded: 0,
        statements: 0,
        unloadable: Vec::new(),
        error: None,
        rows: RowCounts::default(),
        statement_ms: 0,
        oldest_kafka_timestamp_ms: None,
        committed_at_ms: None,
    };
    let report = LoadReport {
        tables: vec![
            TableOutcome {
                files: 4,
                already_loaded: 1,
                unloadable: vec![Unloadable {
                    key: "k".into(),
                    reason: "r".into(),
                }],
                statements: 3,
                statement_ms: 120,
                rows: RowCounts {
                    affected: Some(7),
                    inserted: Some(5),
                    updated: Some(1),
                    deleted: Some(1),
                },
                oldest_kafka_timestamp_ms: Some(10_000),
                committed_at_ms: Some(12_500),
                ..table("a.merge")
            },
            TableOutcome {
                // COPY INTO: inserted only.
                files: 1,
                statements: 1,
                statement_ms: 30,
                rows: RowCounts {
                    affected: Some(4),
                    inserted: Some(4),
                    ..RowCounts::default()
                },
                oldest_kafka_timestamp_ms: Some(9_000),
                committed_at_ms: Some(13_000),
                ..table("a.copy")
            },
            TableOutcome {
                files: 5,
                statements: 2,
                statement_ms: 1_000,
                error: Some("failed".into()),
                oldest_kafka_timestamp_ms: Some(1),
                ..table("a.failed")
            },
        ],
        retries: 2,
        ..LoadReport::default()
    };
    let m = report.metrics();
    let expected = [
        ("FilesLoaded", Unit::Count, 2 + 1),
        ("RowsInserted", Unit::Count, 9),
        ("RowsUpdated", Unit::Count, 1),
        ("RowsDeleted", Unit::Count, 1),
        ("StatementsRun", Unit::Count, 6),
        ("StatementDurationMs", Unit::Milliseconds, 1_150),
        ("Retries", Unit::Count, 2),
        // The larger lag of the two committed tables; the failed one committed nothing.
        ("CommitLagMs", Unit::Milliseconds, 4_000),
    ];
    for (name, unit, value) in expected {
        assert_eq!(
            (m.unit(name), m.get(name)),
            (Some(unit), Some(value)),
            "{name}"
        );
    }
    assert_eq!(m.names().count(), expected.len());
    let doc = check_emf(&m.to_emf_line(1));
    assert_only_known_strings(&doc, &m);

    // A warehouse that reports no split: the counts stay unknown, never zero.
    let quiet = LoadReport {
        tables: vec![TableOutcome {
            files: 1,
            statements: 1,
            rows: RowCounts {
                affected: Some(3),
                ..RowCounts::default()
            },
            ..table("b.t")
        }],
        ..LoadReport::default()
    };
    let m = quiet.metrics();
    for name in ["RowsInserted", "RowsUpdated", "RowsDeleted", "CommitLagMs"] {
        assert_eq!(m.get(name), None, "{name}");
    }
    assert_eq!(m.get("FilesLoaded"), Some(1));
    check_emf(&m.to_emf_line(1));
}

#[test]
fn metrics_row_counts_read_databricks_columns() {
    use crate::load::loader::RowCounts;
    use crate::warehouse::StatementResult;
    let result = StatementResult {
        columns: [
            "num_affected_rows",
            "num_updated_rows",
            "num_deleted_rows",
            "num_inserted_rows",
        ]
        .iter()
        .map(|c| (c.to_string(), "LONG".to_string()))
        .collect(),
        rows: vec![vec![
            Some("10".into()),
            Some("3".into()),
            Some("2".into()),
            Some("5".into()),
        ]],
        ..StatementResult::default()
    };
    assert_eq!(
        RowCounts::of_result(&result),
        RowCounts {
            affected: Some(10),
            inserted: Some(5),
            updated: Some(3),
            deleted: Some(2)
        }
    );
    // A lone `count` column (Sail) tells nothing about the split.
    let count = StatementResult {
        columns: vec![("count".into(), "LONG".into())],
        rows: vec![vec![Some("4".into())]],
        ..StatementResult::default()
    };
    assert_eq!(RowCounts::of_result(&count), RowCounts::default());
}

#[test]
fn metrics_of_a_maintain_report() {
    use crate::maintain::{
        BackfillOutcome, BackfillStatus, MaintainReport, PurgeReport, RedriveReport,
        TombstoneOutcome,
    };
    let tomb = |deleted: Option<i64>, missing: bool| TombstoneOutcome {
        table: "t".into(),
        cutoff_ms: 0,
        deleted,
        table_missing: missing,
        error: None,
    };
    let backfill = |ran: bool, rows: Option<i64>| BackfillOutcome {
        table: "t".into(),
        source: "s".into(),
        status: Some(BackfillStatus::Done),
        ran,
        overlap_met: Some(true),
        backfill_newest_us: None,
        stream_oldest_us: None,
        rows_inserted: rows,
        error: None,
    };
    let report = MaintainReport {
        redrive: Some(RedriveReport {
            stranded: 4,
            loaded: 3,
            ..RedriveReport::default()
        }),
        purge: Some(PurgeReport {
            loaded_files_deleted: 6,
            markers_deleted: 6,
            ..PurgeReport::default()
        }),
        tombstones: Some(vec![
            tomb(Some(2), false),
            tomb(None, true),
            tomb(Some(5), false),
        ]),
        // A done backfill reports its earlier count but did not run now.
        backfill: Some(vec![backfill(true, Some(100)), backfill(false, Some(50))]),
        ..MaintainReport::default()
    };
    let m = report.metrics();
    for (name, value) in [
        ("FilesRedriven", 3),
        ("FilesPurged", 6),
        ("TombstonesDeleted", 7),
        ("BackfillRows", 100),
    ] {
        assert_eq!(
            (m.unit(name), m.get(name)),
            (Some(Unit::Count), Some(value)),
            "{name}"
        );
    }
    let doc = check_emf(&m.to_emf_line(1));
    assert_eq!(doc["Function"], "maintain");
    assert_only_known_strings(&doc, &m);

    // Jobs that did not run give no metric; an unknown count is not made up.
    let partial = MaintainReport {
        tombstones: Some(vec![tomb(None, false)]),
        ..MaintainReport::default()
    };
    assert!(partial.metrics().is_empty());
}

#[tokio::test]
async fn metrics_retries_are_counted_per_scope_and_nested_into_the_outer_one() {
    note_retry(); // outside any scope: ignored
    let ((inner, ()), outer) = count_retries(async {
        note_retry();
        let r = count_retries(async {
            note_retry();
            note_retry();
        })
        .await;
        (r.1, ())
    })
    .await;
    assert_eq!(inner, 2);
    assert_eq!(outer, 3);
}
