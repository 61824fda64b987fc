#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::test_support::TestServer;
use std::net::TcpListener;

const SCHEMA: &str = r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"}]}"#;
const PASSWORD: &str = "s3cr3t-Pa55word";

fn schema_body() -> String {
    serde_json::json!({ "schema": SCHEMA }).to_string()
}

/// The scripted HTTP server, answering as a schema registry.
fn registry_server(script: Vec<(u16, String)>) -> TestServer {
    TestServer::start("application/vnd.schemaregistry.v1+json", script)
}

fn client(url: &str, auth: bool) -> RegistryClient {
    RegistryClient::new(RegistryConfig {
        url: url.to_string(),
        basic_auth: auth.then(|| ("api-key".to_string(), PASSWORD.to_string())),
        timeout: Duration::from_secs(5),
    })
    .expect("client")
}

#[test]
fn wire_header_errors_are_precise() {
    assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]), Ok(258));
    assert_eq!(schema_id(&[0, 0, 0, 0, 7]), Ok(7));
    let message = |bytes: &[u8]| schema_id(bytes).expect_err("error").to_string();
    assert!(message(&[]).contains("empty"));
    assert!(message(&[1, 0, 0, 0, 1]).contains("wrong magic byte 1"));
    assert!(message(b"{\"a\":1}").contains("wrong magic byte 123"));
    assert!(message(&[0, 0, 1]).contains("3 bytes long, shorter than the 5-byte header"));
}

#[tokio::test]
async fn fetches_once_then_serves_from_cache() {
    let server = registry_server(vec![(200, schema_body())]);
    let client = client(&server.url, false);
    let first = client.schema(7).await.expect("schema");
    let second = client.schema(7).await.expect("cached schema");
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(server.requests().len(), 1);
    let request = &server.requests()[0];
    assert!(
        request.starts_with("GET /schemas/ids/7 HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("accept: application/vnd.schemaregistry.v1+json"),
        "{request}"
    );
    assert!(!request.to_ascii_lowercase().contains("authorization"));
    assert!(matches!(first.column_type(), ColumnType::Struct(f) if f.len() == 1));
}

#[tokio::test]
async fn base_path_is_kept() {
    let server = registry_server(vec![(200, schema_body())]);
    let client = client(&format!("{}/registry/", server.url), false);
    client.schema(1).await.expect("schema");
    assert!(server.requests()[0].starts_with("GET /registry/schemas/ids/1 "));
}

#[tokio::test]
async fn sends_basic_auth() {
    let server = registry_server(vec![(200, schema_body())]);
    client(&server.url, true).schema(1).await.expect("schema");
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("api-key:{PASSWORD}"));
    let request = server.requests()[0].to_ascii_lowercase();
    assert!(
        request.contains(&format!(
            "authorization: basic {}",
            expected.to_ascii_lowercase()
        )),
        "{request}"
    );
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth_and_are_never_shown() {
    let server = registry_server(vec![(200, schema_body())]);
    let url = server
        .url
        .replace("http://", &format!("http://api-key:{PASSWORD}@"));
    let client = client(&url, false);
    client.schema(1).await.expect("schema");
    assert!(
        server.requests()[0]
            .to_ascii_lowercase()
            .contains("authorization: basic ")
    );
    assert!(!format!("{client:?}").contains(PASSWORD));
    assert_eq!(
        redact_url("https://u:p@h:1/x@y"),
        "https://<redacted>@h:1/x@y"
    );
    assert_eq!(redact_url("https://h/x@y"), "https://h/x@y");
}

#[tokio::test]
async fn unknown_id_is_record_level() {
    let server = registry_server(vec![
        (
            404,
            r#"{"error_code":40403,"message":"Schema 9 not found"}"#.into(),
        ),
        (
            404,
            r#"{"error_code":40403,"message":"Schema 9 not found"}"#.into(),
        ),
    ]);
    let client = client(&server.url, false);
    let error = client.schema(9).await.expect_err("404");
    assert_eq!(error, RegistryError::NotFound { id: 9 });
    assert!(error.is_record_level());
    assert_eq!(
        error.to_decode_error(),
        Some(DecodeError::UnknownSchema { id: 9 })
    );
    // Not cached: the id may be registered later.
    assert!(client.schema(9).await.is_err());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_404_that_is_not_the_registry_fails_the_invocation() {
    let server = registry_server(vec![(404, "<html>no such page</html>".into())]);
    let error = client(&server.url, false).schema(9).await.expect_err("404");
    assert!(
        matches!(error, RegistryError::Server { status: 404, .. }),
        "{error:?}"
    );
    assert!(!error.is_record_level());
}

#[tokio::test]
async fn unauthorized_points_at_the_setting() {
    let server = registry_server(vec![(
        401,
        r#"{"error_code":401,"message":"Unauthorized"}"#.into(),
    )]);
    let error = client(&server.url, true).schema(1).await.expect_err("401");
    assert_eq!(error, RegistryError::Unauthorized { status: 401 });
    assert!(!error.is_record_level());
    assert!(
        error
            .to_string()
            .contains("DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH")
    );
    assert_eq!(server.requests().len(), 1, "no retry on 401");
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let server = registry_server(vec![
        (503, r#"{"error_code":50003,"message":"busy"}"#.into()),
        (200, schema_body()),
    ]);
    client(&server.url, false)
        .schema(3)
        .await
        .expect("schema after retry");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn persistent_5xx_is_a_server_error() {
    let script = vec![
        (
            500,
            r#"{"error_code":50001,"message":"store down"}"#.to_string()
        );
        3
    ];
    let server = registry_server(script);
    let error = client(&server.url, false).schema(3).await.expect_err("500");
    assert_eq!(
        error,
        RegistryError::Server {
            status: 500,
            detail: "store down (error code 50001)".into()
        }
    );
    assert_eq!(server.requests().len(), ATTEMPTS as usize);
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://api-key:{PASSWORD}@127.0.0.1:{port}");
    let error = client(&url, false).schema(1).await.expect_err("refused");
    match &error {
        RegistryError::Unreachable { url, detail } => {
            assert_eq!(url, &format!("http://<redacted>@127.0.0.1:{port}"));
            assert!(!detail.is_empty());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(!error.is_record_level());
    assert!(!error.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn non_avro_schemas_are_unsupported_and_cached() {
    let body = serde_json::json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"});
    let server = registry_server(vec![(200, body.to_string())]);
    let client = client(&server.url, false);
    let error = client.schema(5).await.expect_err("protobuf");
    assert_eq!(
        error,
        RegistryError::Unsupported {
            id: 5,
            schema_type: "PROTOBUF".into()
        }
    );
    assert!(matches!(
        error.to_decode_error(),
        Some(DecodeError::BadSchema { id: 5, .. })
    ));
    assert!(client.schema(5).await.is_err());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn invalid_schema_is_record_level() {
    let body = serde_json::json!({"schema": r#"{"type":"record","name":"T"}"#});
    let server = registry_server(vec![(200, body.to_string())]);
    let error = client(&server.url, false)
        .schema(6)
        .await
        .expect_err("invalid");
    assert!(
        matches!(error, RegistryError::Invalid { id: 6, .. }),
        "{error:?}"
    );
    assert!(error.is_record_level());
}

#[tokio::test]
async fn references_are_fetched_and_resolved() {
    let address = r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[
        {"name":"city","type":"string"},
        {"name":"since","type":{"type":"int","connect.name":"io.debezium.time.Date"}}]}"#;
    let person = r#"{"type":"record","name":"Person","namespace":"com.acme","fields":[
        {"name":"home","type":"Address"}]}"#;
    let server = registry_server(vec![
        (
            200,
            serde_json::json!({"schema": person, "references": [
                {"name": "com.acme.Address", "subject": "address/value", "version": 2}
            ]})
            .to_string(),
        ),
        (
            200,
            serde_json::json!({"subject": "address/value", "version": 2, "id": 11, "schema": address})
                .to_string(),
        ),
    ]);
    let schema = client(&server.url, false).schema(12).await.expect("schema");
    let requests = server.requests();
    assert!(
        requests[1].starts_with("GET /subjects/address%2Fvalue/versions/2 "),
        "{}",
        requests[1]
    );
    use crate::value::Field;
    assert_eq!(
        schema.column_type(),
        &ColumnType::Struct(vec![Field::new(
            "home",
            ColumnType::Struct(vec![
                Field::new("city", ColumnType::String),
                Field::new("since", ColumnType::Date),
            ])
        )])
    );
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let config = RegistryConfig {
        url: format!("https://api-key:{PASSWORD}@registry.example.com"),
        basic_auth: Some(("api-key".into(), PASSWORD.into())),
        timeout: Duration::from_secs(3),
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(debug.contains("api-key") && debug.contains("<redacted>"));
    let client = RegistryClient::new(config).expect("client");
    assert!(!format!("{client:?}").contains(PASSWORD));
    let scrubbed = client.scrub(&format!("echo: Basic {PASSWORD}"));
    assert!(!scrubbed.contains(PASSWORD));
    let errors = [
        client.unexpected(StatusCode::BAD_GATEWAY, &format!("proxy says {PASSWORD}")),
        client.unexpected(StatusCode::UNAUTHORIZED, PASSWORD),
        client.unexpected(
            StatusCode::BAD_REQUEST,
            &format!(r#"{{"error_code":400,"message":"{PASSWORD}"}}"#),
        ),
    ];
    for error in errors {
        assert!(!error.to_string().contains(PASSWORD), "{error}");
        assert!(!format!("{error:?}").contains(PASSWORD), "{error:?}");
    }
}

#[tokio::test]
async fn prefetch_fetches_each_id_once_and_classifies_errors() {
    let mut source = InMemorySchemas::new();
    source
        .insert(1, SCHEMA)
        .insert(2, r#"{"type":"nonsense"}"#)
        .insert_error(
            3,
            RegistryError::Unsupported {
                id: 3,
                schema_type: "JSON".into(),
            },
        );
    let mut cache = SchemaCache::new();
    cache
        .prefetch(&source, [1, 1, 2, 4, 3, 1, 2])
        .await
        .expect("record-level errors do not abort");
    assert_eq!(source.requests(), 4);
    assert!(cache.get(1).is_ok());
    assert!(matches!(
        cache.get(2),
        Err(DecodeError::BadSchema { id: 2, .. })
    ));
    assert!(matches!(
        cache.get(3),
        Err(DecodeError::BadSchema { id: 3, .. })
    ));
    assert_eq!(
        cache.get(4).err(),
        Some(DecodeError::UnknownSchema { id: 4 })
    );
    assert!(matches!(cache.get(5), Err(DecodeError::Other(_))));
    // Already held: no new request.
    cache
        .prefetch(&source, [1, 2, 3, 4])
        .await
        .expect("prefetch");
    assert_eq!(source.requests(), 4);
}

#[tokio::test]
async fn prefetch_aborts_on_infrastructure_errors() {
    let mut source = InMemorySchemas::new();
    source.insert(1, SCHEMA).insert_error(
        2,
        RegistryError::Unreachable {
            url: "http://registry".into(),
            detail: "connection refused".into(),
        },
    );
    let mut cache = SchemaCache::new();
    let error = cache.prefetch(&source, [1, 2]).await.expect_err("abort");
    assert!(!error.is_record_level());
}

#[test]
fn defaults_apache_avro_rejects_do_not_make_a_schema_invalid() {
    // The default does not match the field's type; Java registries have accepted such schemas.
    let schema =
        r#"{"type":"record","name":"T","fields":[{"name":"n","type":"int","default":"x"}]}"#;
    let parsed = AvroSchema::parse(1, schema).expect("parsed without defaults");
    assert_eq!(
        parsed.column_type(),
        &ColumnType::Struct(vec![crate::value::Field::new("n", ColumnType::Int32)])
    );
}

#[test]
fn backoff_is_short_and_jittered() {
    for retry in 1..4 {
        let cap = BACKOFF_BASE * (1 << (retry - 1));
        let d = backoff(retry);
        assert!(d >= cap / 2 && d <= cap, "{d:?}");
    }
}
