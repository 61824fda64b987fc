//! Confluent Schema Registry client and the per-invocation schema cache used by the Avro
//! decoder.
//!
//! [`RegistryClient`] is built once at cold start and keeps every schema it fetched for the
//! life of the process: a schema id names immutable content in Confluent's registry, so caching
//! forever is right. [`SchemaCache`] is the per-invocation view: the stage handler collects the
//! schema ids of its batch ([`schema_id`]), calls [`SchemaCache::prefetch`] once (the only
//! network step), then decodes every record synchronously with [`SchemaCache::get`].
//!
//! Errors are classified ([`RegistryError::is_record_level`]): a registry that is down,
//! misbehaving or refusing our credentials fails the invocation so that the event source
//! mapping retries it; an unknown id or an unusable schema is a property of the records that
//! carry it, which go to the errors prefix with a [`DecodeError`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use apache_avro::Schema;
use futures::StreamExt as _;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::decode::DecodeError;
use crate::decode::avro::{self, Plan};
use crate::value::ColumnType;

/// Length of the Confluent wire-format header: magic byte 0 and a 4-byte big-endian schema id.
pub const WIRE_HEADER_LEN: usize = 5;

/// Reads the schema id from a record in the Confluent wire format (magic byte `0`, then the
/// schema id as a 4-byte big-endian integer, then the body).
pub fn schema_id(bytes: &[u8]) -> Result<u32, DecodeError> {
    match bytes {
        [] => Err(DecodeError::WireFormat(
            "the record is empty (expected magic byte 0 and a 4-byte schema id)".into(),
        )),
        [magic, ..] if *magic != 0 => Err(DecodeError::WireFormat(format!(
            "wrong magic byte {magic} (expected 0): the record was not written by a Confluent \
             Avro serializer"
        ))),
        [_, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        short => Err(DecodeError::WireFormat(format!(
            "the record is {} bytes long, shorter than the 5-byte header (magic byte and schema id)",
            short.len()
        ))),
    }
}

/// How to reach the schema registry. Built from the function's configuration at cold start.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `https://registry.example.com` or `http://10.0.0.5:8081/registry`.
    pub url: String,
    /// `(user, password)` for HTTP basic auth (Confluent Cloud: API key and secret).
    pub basic_auth: Option<(String, String)>,
    /// Per-request timeout (connect and response).
    pub timeout: Duration,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a schema could not be had from the registry.
///
/// No variant ever holds the password or the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Connection refused, DNS failure, timeout, TLS failure... after retries.
    #[error("schema registry at {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    /// 5xx or 429 after retries, or an answer that is not a schema registry's.
    #[error("schema registry answered HTTP {status}: {detail}")]
    Server { status: u16, detail: String },
    /// 401 or 403: the credentials are missing or wrong.
    #[error(
        "schema registry refused access (HTTP {status}): check DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH \
         (user:password, e.g. a Confluent Cloud API key and secret)"
    )]
    Unauthorized { status: u16 },
    /// The registry does not know this id: the records carrying it are poison.
    #[error("Avro schema id {id} is not known to the schema registry")]
    NotFound { id: u32 },
    /// A JSON Schema or Protobuf schema: records written with it are not Avro.
    #[error("schema id {id} is a {schema_type} schema; only AVRO schemas can be decoded")]
    Unsupported { id: u32, schema_type: String },
    /// The schema text cannot be parsed or compiled.
    #[error("schema id {id} is not a usable Avro schema: {detail}")]
    Invalid { id: u32, detail: String },
    /// The registry configuration itself is unusable (bad URL).
    #[error("invalid schema registry configuration: {detail}")]
    Config { detail: String },
}

impl RegistryError {
    /// True when the error is a property of the records that carry the schema id (they go to
    /// the errors prefix); false when the invocation must fail and be retried.
    pub fn is_record_level(&self) -> bool {
        matches!(
            self,
            RegistryError::NotFound { .. }
                | RegistryError::Unsupported { .. }
                | RegistryError::Invalid { .. }
        )
    }

    /// The decode error of a record whose schema failed this way, for record-level errors.
    pub fn to_decode_error(&self) -> Option<DecodeError> {
        match self {
            RegistryError::NotFound { id } => Some(DecodeError::UnknownSchema { id: *id }),
            RegistryError::Unsupported { id, schema_type } => Some(DecodeError::BadSchema {
                id: *id,
                detail: format!("{schema_type} schemas are not supported, only AVRO"),
            }),
            RegistryError::Invalid { id, detail } => Some(DecodeError::BadSchema {
                id: *id,
                detail: detail.clone(),
            }),
            _ => None,
        }
    }
}

/// A writer schema ready for decoding: the parsed Avro schema, its column type and the
/// compiled decoding plan (built once per schema id, never per record).
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    column_type: ColumnType,
    plan: Plan,
}

impl AvroSchema {
    /// Parses and compiles a schema's JSON text. `id` only labels errors.
    pub fn parse(id: u32, text: &str) -> Result<AvroSchema, RegistryError> {
        Self::parse_with_references(id, text, &[])
    }

    /// Like [`AvroSchema::parse`], with the texts of the schemas it references (Confluent
    /// schema references: named types defined in other subjects).
    ///
    /// Kafka Connect and Debezium annotations (`connect.name` on primitive types) are not kept
    /// by `apache_avro`'s parser, so the compiler walks the JSON text next to the parsed schema
    /// (see [`crate::decode::avro`]).
    pub fn parse_with_references(
        id: u32,
        text: &str,
        references: &[String],
    ) -> Result<AvroSchema, RegistryError> {
        let invalid = |detail: String| RegistryError::Invalid { id, detail };
        let mut json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| invalid(format!("the schema is not valid JSON: {e}")))?;
        let mut ref_jsons = references
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("a referenced schema is not valid JSON: {e}")))?;

        let (schema, ref_schemas) = match parse_schemas(text, references) {
            Ok(parsed) => parsed,
            Err(first) => {
                // Field defaults play no part in decoding with the writer schema, and the Java
                // registry accepts some defaults apache_avro rejects: retry without them.
                let mut stripped = strip_defaults(&mut json);
                for reference in &mut ref_jsons {
                    stripped |= strip_defaults(reference);
                }
                if !stripped {
                    return Err(invalid(first));
                }
                let text = json.to_string();
                let references: Vec<String> = ref_jsons.iter().map(|j| j.to_string()).collect();
                parse_schemas(&text, &references).map_err(|_| invalid(first))?
            }
        };
        let ref_pairs: Vec<(&Schema, Option<&serde_json::Value>)> = ref_schemas
            .iter()
            .zip(ref_jsons.iter())
            .map(|(s, j)| (s, Some(j)))
            .collect();
        let (plan, column_type) =
            avro::compile(&schema, Some(&json), &ref_pairs).map_err(invalid)?;
        Ok(AvroSchema {
            schema,
            column_type,
            plan,
        })
    }

    /// The parsed Avro schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The column type of the values this schema decodes to.
    pub fn column_type(&self) -> &ColumnType {
        &self.column_type
    }

    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

fn parse_schemas(text: &str, references: &[String]) -> Result<(Schema, Vec<Schema>), String> {
    if references.is_empty() {
        Schema::parse_str(text).map(|s| (s, Vec::new()))
    } else {
        Schema::parse_str_with_list(text, references)
    }
    .map_err(|e| e.to_string())
}

/// Removes every record field's `default`; true if any was removed.
fn strip_defaults(json: &mut serde_json::Value) -> bool {
    match json {
        serde_json::Value::Object(map) => {
            let mut removed = false;
            if let Some(serde_json::Value::Array(fields)) = map.get_mut("fields") {
                for field in fields.iter_mut() {
                    if let serde_json::Value::Object(f) = field {
                        removed |= f.remove("default").is_some();
                    }
                }
            }
            for value in map.values_mut() {
                removed |= strip_defaults(value);
            }
            removed
        }
        serde_json::Value::Array(items) => {
            let mut removed = false;
            for item in items {
                removed |= strip_defaults(item);
            }
            removed
        }
        _ => false,
    }
}

/// Where writer schemas come from: the registry in production, a map in tests.
pub trait SchemaSource: Send + Sync {
    /// The schema with this id. Record-level errors ([`RegistryError::is_record_level`]) are
    /// remembered per id by [`SchemaCache`]; any other error aborts the invocation.
    fn schema(
        &self,
        id: u32,
    ) -> impl Future<Output = Result<Arc<AvroSchema>, RegistryError>> + Send;
}

/// How many times a request is tried on connection errors, timeouts, 5xx and 429.
const ATTEMPTS: u32 = 3;
/// Backoff before the second attempt; doubled each time, with full jitter over its upper half.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// How many schema fetches a prefetch runs at once.
const PREFETCH_CONCURRENCY: usize = 8;
/// How deep schema references may nest.
const MAX_REFERENCE_DEPTH: usize = 16;
/// Longest piece of a registry answer quoted in an error.
const MAX_DETAIL: usize = 300;
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";

/// Confluent Schema Registry client, built once at cold start and shared by invocations.
pub struct RegistryClient {
    http: reqwest::Client,
    /// Base URL without credentials.
    base: Url,
    /// For messages: the base URL as configured, credentials removed.
    display_url: String,
    auth: Option<(String, String)>,
    /// Successes and permanent record-level failures (`Unsupported`, `Invalid`): the content
    /// behind a schema id never changes. `NotFound` is not kept (the id may be registered
    /// later, or the registry may lag behind its leader).
    cache: Mutex<HashMap<u32, Result<Arc<AvroSchema>, RegistryError>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .cache
            .lock()
            .map(|c| c.len())
            .unwrap_or_else(|p| p.into_inner().len());
        f.debug_struct("RegistryClient")
            .field("url", &self.display_url)
            .field(
                "basic_auth",
                &self.auth.as_ref().map(|(user, _)| (user, "<redacted>")),
            )
            .field("cached_schemas", &cached)
            .finish_non_exhaustive()
    }
}

/// `GET /schemas/ids/{id}` and `GET /subjects/{subject}/versions/{version}` bodies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaResponse {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
}

#[derive(Debug, Clone, Deserialize)]
struct SchemaReference {
    #[serde(default)]
    name: String,
    subject: String,
    version: i64,
}

/// Confluent's error body, `{"error_code": 40403, "message": "Schema 7 not found"}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error_code: i64,
    #[serde(default)]
    message: String,
}

impl RegistryClient {
    /// Builds the client. Credentials embedded in the URL (`https://user:pass@host`) are used
    /// as basic auth when `basic_auth` is not set, and never shown.
    pub fn new(config: RegistryConfig) -> Result<RegistryClient, RegistryError> {
        let display_url = redact_url(config.url.trim());
        let mut base = Url::parse(config.url.trim()).map_err(|e| RegistryError::Config {
            detail: format!("schema registry URL {display_url} is not a URL: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(RegistryError::Config {
                detail: format!("schema registry URL {display_url} must be http:// or https://"),
            });
        }
        let auth = take_url_credentials(&mut base, config.basic_auth);
        base.set_query(None);
        base.set_fragment(None);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| RegistryError::Config {
                detail: format!(
                    "cannot build the HTTP client: {}",
                    error_chain(&e.without_url())
                ),
            })?;
        Ok(RegistryClient {
            http,
            base,
            display_url,
            auth,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The schema with this id, from the process-wide cache or the registry.
    pub async fn schema(&self, id: u32) -> Result<Arc<AvroSchema>, RegistryError> {
        if let Some(cached) = self.lock_cache().get(&id) {
            return cached.clone();
        }
        let result = self.fetch(id).await;
        match &result {
            Ok(_) | Err(RegistryError::Unsupported { .. } | RegistryError::Invalid { .. }) => {
                self.lock_cache().insert(id, result.clone());
            }
            Err(_) => {}
        }
        result
    }

    fn lock_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u32, Result<Arc<AvroSchema>, RegistryError>>> {
        // The map is always consistent (single inserts), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self, id: u32) -> Result<Arc<AvroSchema>, RegistryError> {
        let url = self.url(&["schemas", "ids", &id.to_string()]);
        let (status, body) = self.get(url).await?;
        let response: SchemaResponse = match status {
            StatusCode::OK => self.parse_body(status, &body)?,
            StatusCode::NOT_FOUND if is_registry_error(&body) => {
                return Err(RegistryError::NotFound { id });
            }
            other => return Err(self.unexpected(other, &body)),
        };
        if let Some(schema_type) = &response.schema_type
            && !schema_type.eq_ignore_ascii_case("AVRO")
        {
            return Err(RegistryError::Unsupported {
                id,
                schema_type: schema_type.clone(),
            });
        }
        let references = self.resolve_references(id, &response.references).await?;
        let schema = AvroSchema::parse_with_references(id, &response.schema, &references)?;
        tracing::debug!(
            schema_id = id,
            references = references.len(),
            "fetched Avro schema"
        );
        Ok(Arc::new(schema))
    }

    /// The texts of every schema referenced, directly or not, deduplicated by subject and
    /// version.
    async fn resolve_references(
        &self,
        id: u32,
        direct: &[SchemaReference],
    ) -> Result<Vec<String>, RegistryError> {
        let mut texts = Vec::new();
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        let mut pending: Vec<(SchemaReference, usize)> =
            direct.iter().cloned().map(|r| (r, 1)).collect();
        while let Some((reference, depth)) = pending.pop() {
            if !seen.insert((reference.subject.clone(), reference.version)) {
                continue;
            }
            if depth > MAX_REFERENCE_DEPTH {
                return Err(RegistryError::Invalid {
                    id,
                    detail: format!("schema references nest deeper than {MAX_REFERENCE_DEPTH}"),
                });
            }
            let version = if reference.version < 0 {
                "latest".to_string()
            } else {
                reference.version.to_string()
            };
            let url = self.url(&["subjects", &reference.subject, "versions", &version]);
            let (status, body) = self.get(url).await?;
            let response: SchemaResponse = match status {
                StatusCode::OK => self.parse_body(status, &body)?,
                StatusCode::NOT_FOUND if is_registry_error(&body) => {
                    return Err(RegistryError::Invalid {
                        id,
                        detail: format!(
                            "referenced schema {:?} (subject {:?} version {version}) is not in the registry",
                            reference.name, reference.subject
                        ),
                    });
                }
                other => return Err(self.unexpected(other, &body)),
            };
            pending.extend(response.references.iter().cloned().map(|r| (r, depth + 1)));
            texts.push(response.schema);
        }
        Ok(texts)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn parse_body(&self, status: StatusCode, body: &str) -> Result<SchemaResponse, RegistryError> {
        serde_json::from_str(body).map_err(|e| RegistryError::Server {
            status: status.as_u16(),
            detail: format!(
                "not a schema registry answer ({e}): {}",
                self.scrub(&truncate(body))
            ),
        })
    }

    fn unexpected(&self, status: StatusCode, body: &str) -> RegistryError {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                status: status.as_u16(),
            },
            _ => RegistryError::Server {
                status: status.as_u16(),
                detail: self.scrub(&error_detail(body)),
            },
        }
    }

    /// One GET with retries on transport errors, 5xx and 429. Returns the final status and
    /// body of any other answer.
    async fn get(&self, url: Url) -> Result<(StatusCode, String), RegistryError> {
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(backoff(attempt - 1)).await;
            }
            let mut request = self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, ACCEPT);
            if let Some((user, password)) = &self.auth {
                request = request.basic_auth(user, Some(password));
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.text().await {
                        Ok(body)
                            if status.is_server_error()
                                || status == StatusCode::TOO_MANY_REQUESTS =>
                        {
                            RegistryError::Server {
                                status: status.as_u16(),
                                detail: self.scrub(&error_detail(&body)),
                            }
                        }
                        Ok(body) => return Ok((status, body)),
                        Err(e) => self.unreachable(&e),
                    }
                }
                Err(e) => self.unreachable(&e),
            };
            tracing::warn!(
                registry = %self.display_url,
                path = url.path(),
                attempt,
                error = %error,
                "schema registry request failed"
            );
            last_error = Some(error);
        }
        Err(last_error.unwrap_or_else(|| RegistryError::Unreachable {
            url: self.display_url.clone(),
            detail: "no attempt was made".into(),
        }))
    }

    fn unreachable(&self, error: &reqwest::Error) -> RegistryError {
        let detail = if error.is_timeout() {
            format!("timed out: {}", error_chain(error))
        } else {
            error_chain(error)
        };
        RegistryError::Unreachable {
            url: self.display_url.clone(),
            detail: self.scrub(&detail),
        }
    }

    /// Removes the password from text that came from outside (server answers, error chains).
    fn scrub(&self, text: &str) -> String {
        match &self.auth {
            Some((_, password)) if !password.is_empty() => {
                text.replace(password.as_str(), "<redacted>")
            }
            _ => text.to_string(),
        }
    }
}

impl SchemaSource for RegistryClient {
    fn schema(
        &self,
        id: u32,
    ) -> impl Future<Output = Result<Arc<AvroSchema>, RegistryError>> + Send {
        RegistryClient::schema(self, id)
    }
}

/// The chain of causes of an error, without any URL.
fn error_chain(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    // `without_url` consumes; rebuild the message from the sources instead.
    let mut out = String::new();
    let mut source = error.source();
    let head = error.to_string();
    // reqwest's own message may carry the URL ("error sending request for url (...)"): keep
    // only the part before it.
    let head = head.split(" for url (").next().unwrap_or_default();
    out.push_str(head);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Confluent's `message` if the body is its error JSON, else the body itself (shortened).
fn error_detail(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => format!("{} (error code {})", truncate(&e.message), e.error_code),
        Err(_) if body.trim().is_empty() => "empty response body".into(),
        Err(_) => truncate(body),
    }
}

fn is_registry_error(body: &str) -> bool {
    serde_json::from_str::<ErrorBody>(body).is_ok()
}

fn truncate(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Full jitter over the upper half of `BACKOFF_BASE * 2^(retry-1)`.
fn backoff(retry: u32) -> Duration {
    let cap = BACKOFF_BASE.saturating_mul(1 << retry.saturating_sub(1).min(8));
    let half = cap / 2;
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(retry);
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(hasher.finish() % nanos)
}

/// Removes the credentials embedded in `url` (`https://user:pass@host`) and returns the basic
/// auth to use: `basic_auth` when set, else the URL's user and password (percent-decoded).
pub(crate) fn take_url_credentials(
    url: &mut Url,
    basic_auth: Option<(String, String)>,
) -> Option<(String, String)> {
    if url.username().is_empty() && url.password().is_none() {
        return basic_auth;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = basic_auth.or_else(|| {
        Some((
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        ))
    });
    // Infallible for URLs with a host, the only ones that can hold credentials.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    auth
}

/// The URL with any `user:password@` replaced by `<redacted>@`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// Schemas held in memory: for tests and for running without a registry.
#[derive(Debug, Default)]
pub struct InMemorySchemas {
    entries: HashMap<u32, Result<Arc<AvroSchema>, RegistryError>>,
    requests: std::sync::atomic::AtomicUsize,
}

impl InMemorySchemas {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and adds a schema; a schema that does not parse is kept as its error.
    pub fn insert(&mut self, id: u32, schema_json: &str) -> &mut Self {
        let entry = AvroSchema::parse(id, schema_json).map(Arc::new);
        self.entries.insert(id, entry);
        self
    }

    /// Makes `schema(id)` fail with `error`.
    pub fn insert_error(&mut self, id: u32, error: RegistryError) -> &mut Self {
        self.entries.insert(id, Err(error));
        self
    }

    /// How many times `schema` was called.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SchemaSource for InMemorySchemas {
    async fn schema(&self, id: u32) -> Result<Arc<AvroSchema>, RegistryError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.entries
            .get(&id)
            .cloned()
            .unwrap_or(Err(RegistryError::NotFound { id }))
    }
}

/// The schemas of one invocation, fetched before decoding starts.
#[derive(Debug, Default)]
pub struct SchemaCache {
    entries: HashMap<u32, Result<Arc<AvroSchema>, DecodeError>>,
}

impl SchemaCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fetches every distinct id not yet held. Record-level failures are remembered per id
    /// (and returned by [`SchemaCache::get`]); any other failure is returned and the invocation
    /// must fail.
    pub async fn prefetch(
        &mut self,
        source: &impl SchemaSource,
        ids: impl IntoIterator<Item = u32>,
    ) -> Result<(), RegistryError> {
        let mut missing: Vec<u32> = ids
            .into_iter()
            .filter(|id| !self.entries.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let results: Vec<(u32, Result<Arc<AvroSchema>, RegistryError>)> =
            futures::stream::iter(missing)
                .map(|id| async move { (id, source.schema(id).await) })
                .buffer_unordered(PREFETCH_CONCURRENCY)
                .collect()
                .await;
        let mut failure = None;
        for (id, result) in results {
            match result {
                Ok(schema) => {
                    self.entries.insert(id, Ok(schema));
                }
                Err(e) => match e.to_decode_error() {
                    Some(decode_error) => {
                        tracing::warn!(schema_id = id, error = %e, "records with this schema id cannot be decoded");
                        self.entries.insert(id, Err(decode_error));
                    }
                    None => failure = failure.or(Some(e)),
                },
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Adds a schema directly (tests, benches).
    pub fn insert(&mut self, id: u32, schema: Arc<AvroSchema>) {
        self.entries.insert(id, Ok(schema));
    }

    /// The schema for `id`, or why records with this id cannot be decoded.
    pub fn get(&self, id: u32) -> Result<&AvroSchema, DecodeError> {
        match self.entries.get(&id) {
            Some(Ok(schema)) => Ok(schema),
            Some(Err(e)) => Err(e.clone()),
            None => Err(DecodeError::Other(format!(
                "Avro schema id {id} was not fetched before decoding (internal error: prefetch \
                 every id of the batch first)"
            ))),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
