//! Check 2: the staging bucket takes a probe object (put, get, list, delete).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{CheckInputs, CheckResult, names, short};
use crate::store::{ObjectStore, StoreError};

async fn within<T>(deadline: Instant, fut: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut)
        .await
        .ok()
}

fn probe_key(state_prefix: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{state_prefix}/check/probe-{}-{:08x}.txt",
        now.as_millis(),
        now.subsec_nanos() ^ std::process::id()
    )
}

pub(super) async fn check_bucket<S: ObjectStore, E>(inputs: &CheckInputs<'_, S, E>) -> CheckResult {
    let name = names::BUCKET;
    let Some(bucket) = inputs.bucket else {
        return CheckResult::not_run(
            name,
            "not run: DELTASINK_STAGING_BUCKET is not set (see configuration)",
        );
    };
    let state = inputs.state_prefix.trim_matches('/');
    let staging = inputs.staging_prefix.trim_matches('/');
    if state.is_empty() || state == staging || state.starts_with(&format!("{staging}/")) {
        return CheckResult::fail(
            name,
            format!(
                "the state prefix {state:?} is empty or inside the staging prefix {staging:?}, so a probe there could be taken for staged data"
            ),
            "give maintain a state prefix outside the staging prefix",
        );
    }
    let key = probe_key(state);
    let body = Bytes::from(format!(
        "deltasink check probe: safe to delete (s3://{bucket}/{key})\n"
    ));
    let deadline = inputs.deadline;
    let store = inputs.store;
    let timed_out = |op: &str| {
        CheckResult::fail(
            name,
            format!("S3 {op} of s3://{bucket}/{key} did not answer before the deadline"),
            "check the network path to S3 (a Lambda function in a VPC needs an S3 gateway endpoint or a NAT gateway), or raise the deadline",
        )
    };

    match within(
        deadline,
        store.put(bucket, &key, body.clone(), "text/plain"),
    )
    .await
    {
        None => return timed_out("PutObject"),
        Some(Err(e)) => return store_failure(&e),
        Some(Ok(())) => {}
    }
    // From here on the probe exists: always try to delete it, and report the first failure.
    let mut failure = match within(deadline, store.get(bucket, &key)).await {
        None => Some(timed_out("GetObject")),
        Some(Err(e)) => Some(store_failure(&e)),
        Some(Ok(read)) if read != body => Some(CheckResult::fail(
            name,
            format!(
                "the probe s3://{bucket}/{key} read back {} bytes that differ from the {} written",
                read.len(),
                body.len()
            ),
            "check for anything that rewrites objects in this bucket (an S3 Object Lambda access point, a proxy)",
        )),
        Some(Ok(_)) => None,
    };
    if failure.is_none() {
        let prefix = format!("{state}/check/");
        failure = match within(deadline, store.list(bucket, &prefix)).await {
            None => Some(timed_out("ListObjectsV2")),
            Some(Err(e)) => Some(store_failure(&e)),
            Some(Ok(listed)) if !listed.iter().any(|o| o.key == key) => Some(CheckResult::fail(
                name,
                format!("listing s3://{bucket}/{prefix} does not show the probe just written"),
                "check that the store is strongly consistent (Amazon S3 is) and that AWS_ENDPOINT_URL points at the right server",
            )),
            Some(Ok(_)) => None,
        };
    }
    let deleted = match within(deadline, store.delete(bucket, &key)).await {
        None => Some(timed_out("DeleteObject")),
        Some(Err(e)) => Some(store_failure(&e)),
        Some(Ok(())) => None,
    };
    match failure.or(deleted) {
        Some(f) => f,
        None => CheckResult::pass(
            name,
            format!("s3://{bucket}: put, get, list and delete of the probe {key} worked"),
        ),
    }
}

/// The last cause of an SDK error chain (`…: Connection refused (os error 111)`).
fn last_cause(detail: &str) -> &str {
    detail.rsplit(": ").next().unwrap_or(detail).trim()
}

/// Explains an S3 failure of the probe from the SDK's error text (codes such as
/// `NoSuchBucket` or `AccessDenied`, or the transport error).
pub fn store_failure(e: &StoreError) -> CheckResult {
    let name = names::BUCKET;
    let d = e.detail.as_str();
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    let (op, bucket, key) = (e.operation, &e.bucket, &e.key);
    if has(&["NoSuchBucket"]) {
        CheckResult::fail(
            name,
            format!("bucket {bucket} does not exist ({op}: NoSuchBucket)"),
            format!(
                "create the bucket {bucket} in the function's region, or set DELTASINK_STAGING_BUCKET to the staging bucket's name"
            ),
        )
    } else if has(&[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "credential",
        "Credential",
    ]) {
        CheckResult::fail(
            name,
            format!(
                "S3 refused the AWS credentials in use ({op}: {})",
                short(last_cause(d), 120)
            ),
            "check the credentials: in Lambda the function's execution role; locally AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (refresh an expired session token)",
        )
    } else if has(&["AccessDenied", "AllAccessDisabled", "Forbidden"]) {
        CheckResult::fail(
            name,
            format!(
                "S3 denied {op} on s3://{bucket}/{key} (AccessDenied): the role lacks the permission, or a bucket or KMS key policy refuses it"
            ),
            format!(
                "allow s3:PutObject, s3:GetObject and s3:DeleteObject on arn:aws:s3:::{bucket}/* and s3:ListBucket on arn:aws:s3:::{bucket} to the function's role (plus kms:GenerateDataKey and kms:Decrypt when the bucket uses SSE-KMS), and check the bucket policy"
            ),
        )
    } else if has(&[
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraint",
        "wrong region",
    ]) {
        CheckResult::fail(
            name,
            format!("bucket {bucket} is in another region than the client's ({op})"),
            "run the function in the bucket's region, or set AWS_REGION to it",
        )
    } else if has(&["KMS"]) {
        CheckResult::fail(
            name,
            format!(
                "the bucket's KMS key refused {op} ({})",
                short(last_cause(d), 120)
            ),
            "allow kms:GenerateDataKey and kms:Decrypt on the bucket's KMS key to the function's role",
        )
    } else if has(&[
        "dispatch failure",
        "io error",
        "connect",
        "Connection refused",
        "dns error",
        "timed out",
        "timeout",
    ]) {
        CheckResult::fail(
            name,
            format!(
                "the S3 endpoint is unreachable ({op}: {})",
                short(last_cause(d), 120)
            ),
            "check AWS_ENDPOINT_URL when set (a local S3 server must be running) and the network path: a Lambda function in a VPC needs an S3 gateway endpoint or a NAT gateway",
        )
    } else if has(&["NoSuchKey"]) {
        CheckResult::fail(
            name,
            format!(
                "the probe s3://{bucket}/{key} was written but is gone when read back ({op}: NoSuchKey)"
            ),
            "check for a lifecycle rule or another process that deletes new objects in this bucket",
        )
    } else {
        CheckResult::fail(
            name,
            format!("S3 {op} of s3://{bucket}/{key} failed: {}", short(d, 200)),
            "check the bucket name, its region and the function's S3 permissions",
        )
    }
}
