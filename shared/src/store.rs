//! Object storage behind a narrow trait: the S3 implementation for Lambda and the local S3
//! server, and an in-memory one for unit tests of one piece.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

/// A storage failure. Always infrastructure: the invocation fails and is retried.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} s3://{bucket}/{key}: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub detail: String,
}

impl StoreError {
    /// Whether the object (or bucket) does not exist, as opposed to a failure to reach it.
    pub fn is_not_found(&self) -> bool {
        ["NoSuchKey", "NotFound", "NoSuchBucket", "404"]
            .iter()
            .any(|m| self.detail.contains(m))
    }
}

/// An object listed under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Last-modified time, milliseconds since the epoch.
    pub modified_ms: i64,
}

/// The operations deltasink needs from an object store.
pub trait ObjectStore: Send + Sync {
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    /// The last `len` bytes of an object (all of it when shorter): a Parquet footer.
    fn get_tail(
        &self,
        bucket: &str,
        key: &str,
        len: u64,
    ) -> impl Future<Output = Result<Bytes, StoreError>> + Send;

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, StoreError>> + Send;

    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Amazon S3 (or any S3-protocol server: set `AWS_ENDPOINT_URL`).
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store { client }
    }

    /// A client from the standard AWS configuration chain, with path-style addressing when
    /// a custom endpoint is set (local S3 servers need it).
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let path_style = shared.endpoint_url().is_some();
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        S3Store::new(aws_sdk_s3::Client::from_conf(conf))
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// GetObject, whole or an HTTP `Range`, collected into memory.
    async fn fetch(
        &self,
        bucket: &str,
        key: &str,
        range: Option<String>,
    ) -> Result<Bytes, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| error("GetObject", bucket, key, e))?;
        out.body
            .collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| error("GetObject", bucket, key, e))
    }
}

fn error(
    operation: &'static str,
    bucket: &str,
    key: &str,
    e: impl std::error::Error,
) -> StoreError {
    // Include the source chain: the SDK's top-level message alone is "service error".
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    StoreError {
        operation,
        bucket: bucket.to_string(),
        key: key.to_string(),
        detail,
    }
}

impl ObjectStore for S3Store {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error("PutObject", bucket, key, e))
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.fetch(bucket, key, None).await
    }

    async fn get_tail(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes, StoreError> {
        self.fetch(bucket, key, Some(format!("bytes=-{len}"))).await
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("ListObjectsV2", bucket, prefix, e))?;
            for o in page.contents() {
                out.push(ObjectInfo {
                    key: o.key().unwrap_or_default().to_string(),
                    size: o.size().unwrap_or_default().max(0) as u64,
                    modified_ms: o
                        .last_modified()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| error("DeleteObject", bucket, key, e))
    }
}

/// An in-memory store for unit tests. `fail_puts_under` makes puts under a prefix fail, to
/// test infrastructure failures.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<(String, String), Bytes>>,
    fail_puts_under: Mutex<Option<String>>,
    puts: std::sync::atomic::AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail_puts_under(&self, prefix: Option<&str>) {
        if let Ok(mut p) = self.fail_puts_under.lock() {
            *p = prefix.map(str::to_string);
        }
    }

    /// Every (bucket, key) stored, in order.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.objects
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        self.objects
            .lock()
            .ok()?
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    /// Number of successful puts so far.
    pub fn put_count(&self) -> usize {
        self.puts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn poisoned(operation: &'static str, bucket: &str, key: &str) -> StoreError {
    StoreError {
        operation,
        bucket: bucket.into(),
        key: key.into(),
        detail: "memory store lock poisoned".into(),
    }
}

impl ObjectStore for MemoryStore {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let failing = self
            .fail_puts_under
            .lock()
            .map_err(|_| poisoned("PutObject", bucket, key))?
            .clone();
        if let Some(prefix) = failing
            && key.starts_with(&prefix)
        {
            return Err(StoreError {
                operation: "PutObject",
                bucket: bucket.into(),
                key: key.into(),
                detail: "injected failure: service unavailable".into(),
            });
        }
        self.objects
            .lock()
            .map_err(|_| poisoned("PutObject", bucket, key))?
            .insert((bucket.to_string(), key.to_string()), body);
        self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Bytes, StoreError> {
        self.object(bucket, key).ok_or_else(|| StoreError {
            operation: "GetObject",
            bucket: bucket.into(),
            key: key.into(),
            detail: "NoSuchKey".into(),
        })
    }

    async fn get_tail(&self, bucket: &str, key: &str, len: u64) -> Result<Bytes, StoreError> {
        let body = self.get(bucket, key).await?;
        let start = body
            .len()
            .saturating_sub(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(body.slice(start..))
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let objects = self
            .objects
            .lock()
            .map_err(|_| poisoned("ListObjectsV2", bucket, prefix))?;
        Ok(objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, k), v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
                modified_ms: 0,
            })
            .collect())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.objects
            .lock()
            .map_err(|_| poisoned("DeleteObject", bucket, key))?
            .remove(&(bucket.to_string(), key.to_string()));
        Ok(())
    }
}
