//! The load function's triggers, unwrapped into the staged objects they announce:
//! SQS messages carrying S3 notifications (the default wiring), direct S3 events, EventBridge
//! "Object Created" events (also when they arrive through SQS), and SNS-wrapped S3
//! notifications. `s3:TestEvent` messages are ignored.

use percent_encoding::percent_decode_str;
use serde_json::Value as Json;

/// One object an event announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub bucket: String,
    /// The decoded object key.
    pub key: String,
    /// The SQS message it came in, for batch item failures; `None` for direct events.
    pub message_id: Option<String>,
}

/// What an invocation's event holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notifications {
    pub objects: Vec<Announced>,
    /// Messages that announce nothing to load (test events, other event types), with why.
    pub ignored: Vec<(Option<String>, String)>,
    /// SQS messages whose body could not be read: reported as failures so that SQS
    /// redrives them to the dead-letter queue instead of losing them.
    pub unreadable: Vec<(String, String)>,
}

/// Why the event as a whole is not one the load function takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported event for the load function: {0}")]
pub struct UnsupportedEvent(pub String);

/// Reads any supported trigger event.
pub fn parse(event: &Json) -> Result<Notifications, UnsupportedEvent> {
    let mut out = Notifications::default();
    if let Some(records) = event.get("Records").and_then(Json::as_array) {
        for record in records {
            match record.get("eventSource").and_then(Json::as_str) {
                Some("aws:sqs") => {
                    let id = record
                        .get("messageId")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let body = record
                        .get("body")
                        .and_then(Json::as_str)
                        .unwrap_or_default();
                    match serde_json::from_str::<Json>(body) {
                        Ok(inner) => read_message(&inner, Some(&id), &mut out),
                        Err(e) => out
                            .unreadable
                            .push((id, format!("SQS body is not JSON: {e}"))),
                    }
                }
                Some("aws:s3") => read_s3_record(record, None, &mut out),
                other => {
                    return Err(UnsupportedEvent(format!(
                        "record with eventSource {other:?} (expected aws:sqs or aws:s3)"
                    )));
                }
            }
        }
        return Ok(out);
    }
    if is_eventbridge_object_created(event) {
        read_eventbridge(event, None, &mut out);
        return Ok(out);
    }
    Err(UnsupportedEvent(
        "expected an SQS, S3 or EventBridge S3 event".into(),
    ))
}

fn read_message(message: &Json, id: Option<&str>, out: &mut Notifications) {
    let owned_id = id.map(str::to_string);
    if message.get("Event").and_then(Json::as_str) == Some("s3:TestEvent") {
        out.ignored.push((owned_id, "s3:TestEvent".into()));
        return;
    }
    // SNS → SQS: the S3 notification is the SNS message's text.
    if message.get("Type").and_then(Json::as_str) == Some("Notification")
        && let Some(text) = message.get("Message").and_then(Json::as_str)
    {
        match serde_json::from_str::<Json>(text) {
            Ok(inner) => read_message(&inner, id, out),
            Err(e) => out.unreadable.push((
                owned_id.unwrap_or_default(),
                format!("SNS message is not JSON: {e}"),
            )),
        }
        return;
    }
    if let Some(records) = message.get("Records").and_then(Json::as_array) {
        for record in records {
            read_s3_record(record, id, out);
        }
        return;
    }
    if is_eventbridge_object_created(message) {
        read_eventbridge(message, id, out);
        return;
    }
    match id {
        Some(id) => out.unreadable.push((
            id.to_string(),
            "message is neither an S3 notification nor an EventBridge S3 event".into(),
        )),
        None => out.ignored.push((None, "not an S3 notification".into())),
    }
}

fn read_s3_record(record: &Json, id: Option<&str>, out: &mut Notifications) {
    let event_name = record
        .get("eventName")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if !event_name.starts_with("ObjectCreated:") {
        out.ignored
            .push((id.map(str::to_string), format!("S3 event {event_name:?}")));
        return;
    }
    let s3 = record.get("s3");
    let bucket = s3
        .and_then(|s| s.pointer("/bucket/name"))
        .and_then(Json::as_str);
    let key = s3
        .and_then(|s| s.pointer("/object/key"))
        .and_then(Json::as_str);
    match (bucket, key) {
        (Some(bucket), Some(key)) => out.objects.push(Announced {
            bucket: bucket.to_string(),
            key: decode_s3_event_key(key),
            message_id: id.map(str::to_string),
        }),
        _ => out.unreadable.push((
            id.unwrap_or_default().to_string(),
            "S3 record without s3.bucket.name or s3.object.key".into(),
        )),
    }
}

fn is_eventbridge_object_created(event: &Json) -> bool {
    event.get("source").and_then(Json::as_str) == Some("aws.s3")
        && event.get("detail-type").and_then(Json::as_str) == Some("Object Created")
}

fn read_eventbridge(event: &Json, id: Option<&str>, out: &mut Notifications) {
    let bucket = event.pointer("/detail/bucket/name").and_then(Json::as_str);
    let key = event.pointer("/detail/object/key").and_then(Json::as_str);
    match (bucket, key) {
        // EventBridge keys are not URL-encoded.
        (Some(bucket), Some(key)) => out.objects.push(Announced {
            bucket: bucket.to_string(),
            key: key.to_string(),
            message_id: id.map(str::to_string),
        }),
        _ => out.unreadable.push((
            id.unwrap_or_default().to_string(),
            "EventBridge S3 event without detail.bucket.name or detail.object.key".into(),
        )),
    }
}

/// S3 notification keys are URL-encoded with `+` for spaces: `+` → space, then
/// percent-decoding (an encoded plus arrives as `%2B`).
pub fn decode_s3_event_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Json {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn sqs_batch_of_s3_notifications() {
        let n = parse(&sample("sqs-s3-notifications.json")).unwrap();
        assert_eq!(n.objects.len(), 6);
        assert_eq!(n.objects[0].bucket, "deltasink-local");
        assert_eq!(
            n.objects[0].key,
            "staging/public.customers/shop.public.customers/0/0-19.parquet"
        );
        assert!(n.objects.iter().all(|o| o.message_id.is_some()));
        assert_eq!(n.ignored.len(), 1);
        assert_eq!(n.ignored[0].1, "s3:TestEvent");
        assert!(n.unreadable.is_empty());
    }

    #[test]
    fn direct_s3_event_keys_are_decoded() {
        let n = parse(&sample("s3-object-created.json")).unwrap();
        let keys: Vec<&str> = n.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys[1],
            "my staging/shop.public.customers/shop.public.customers/1/0-20.parquet"
        );
        assert_eq!(
            keys[2],
            "staging/shop.public.order%2Eitems/shop.public.order.items/0/0-9.parquet"
        );
        assert!(n.objects.iter().all(|o| o.message_id.is_none()));
    }

    #[test]
    fn eventbridge_event_directly_and_through_sqs() {
        let event = sample("eventbridge-s3-object-created.json");
        let n = parse(&event).unwrap();
        assert_eq!(
            n.objects[0].key,
            "staging/public.orders/shop.public.orders/1/2000-2007.parquet"
        );
        let wrapped = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": event.to_string()}]});
        let n = parse(&wrapped).unwrap();
        assert_eq!(n.objects[0].message_id.as_deref(), Some("m1"));
    }

    #[test]
    fn sns_wrapped_notifications_are_unwrapped() {
        let s3 = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "staging/t/a+b%2B.parquet"}}}]});
        let sns = serde_json::json!({"Type": "Notification", "Message": s3.to_string()});
        let sqs = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": sns.to_string()}]});
        let n = parse(&sqs).unwrap();
        assert_eq!(n.objects[0].key, "staging/t/a b+.parquet");
    }

    #[test]
    fn unreadable_messages_are_reported_not_dropped() {
        let sqs = serde_json::json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "bad", "body": "not json"},
            {"eventSource": "aws:sqs", "messageId": "odd", "body": "{\"hello\": 1}"}
        ]});
        let n = parse(&sqs).unwrap();
        assert_eq!(n.unreadable.len(), 2);
        assert_eq!(n.unreadable[0].0, "bad");
        assert!(parse(&serde_json::json!({"detail-type": "Scheduled Event"})).is_err());
    }
}
