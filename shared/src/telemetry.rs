//! Logging set-up shared by the functions: JSON lines in Lambda (CloudWatch), readable text
//! elsewhere; level from `RUST_LOG` (default `info`).
//!
//! A JSON line is one flat object: `level`, `message`, the innermost span's name as `span`,
//! then the fields of every enclosing span (root first: the Lambda runtime's `requestId`, the
//! batch, the table, the file) and the event's own fields, so that CloudWatch Logs Insights
//! filters on `table`, `topic`, `partition`, `offsets`, `s3_key`, `statement_id` directly. An
//! inner field overrides an outer one of the same name; the event's own fields win.
//!
//! Metrics are not logs: see [`crate::metrics`] for the one EMF line per invocation.

use std::fmt;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global `tracing` subscriber. Safe to call more than once.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if in_lambda {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The JSON line format (see the module documentation). Use it with
/// [`JsonFields`](tracing_subscriber::fmt::format::JsonFields) as the field formatter, which
/// records span fields as JSON:
/// `tracing_subscriber::fmt().fmt_fields(JsonFields::new()).event_format(JsonLines)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        let mut span_name = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(recorded) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Json::Object(map)) = serde_json::from_str::<Json>(recorded)
                {
                    fields.extend(map);
                }
                span_name = Some(span.name());
            }
        }
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message");

        let mut line = Map::new();
        line.insert(
            "level".into(),
            Json::from(event.metadata().level().as_str()),
        );
        if let Some(message) = message {
            line.insert("message".into(), message);
        }
        if let Some(name) = span_name {
            line.insert("span".into(), Json::from(name));
        }
        // Without serde_json's `preserve_order` the map sorts its keys; write the head first.
        let head = serde_json::to_string(&Json::Object(line)).map_err(|_| fmt::Error)?;
        let rest = serde_json::to_string(&Json::Object(fields)).map_err(|_| fmt::Error)?;
        let head = head.strip_suffix('}').unwrap_or(&head);
        match rest.strip_prefix('{') {
            Some("}") | None => writeln!(writer, "{head}}}"),
            Some(rest) => writeln!(writer, "{head},{rest}"),
        }
    }
}

/// Records an event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Json>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Json::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Json::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Json::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Json::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Json::from(format!("{value:?}")));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::{Instrument, info, info_span, warn};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Json> {
        String::from_utf8(buffer.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn json_lines_carry_the_fields_of_every_enclosing_span() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        info!(n = 1, "outside");
        async {
            async {
                info!(rows = 3_u64, s3_key = "staging/a.parquet", "staged");
                warn!(table = "x.y", "event field wins");
            }
            .instrument(info_span!("load_table", table = "sales.orders", files = 2))
            .await;
        }
        .instrument(info_span!(
            "load",
            requestId = "r-1",
            table = tracing::field::Empty
        ))
        .await;

        let lines = lines(&buffer);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            lines[0],
            serde_json::json!({"level": "INFO", "message": "outside", "n": 1})
        );
        assert_eq!(
            lines[1],
            serde_json::json!({
                "level": "INFO", "message": "staged", "span": "load_table",
                "requestId": "r-1", "table": "sales.orders", "files": 2,
                "rows": 3, "s3_key": "staging/a.parquet",
            })
        );
        assert_eq!(lines[2]["level"], "WARN");
        assert_eq!(lines[2]["table"], "x.y");
        // The head comes first.
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.lines().all(|l| l.starts_with("{\"level\":")), "{text}");
    }
}
