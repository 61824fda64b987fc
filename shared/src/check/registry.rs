//! Check 5: the schema registry answers `GET /subjects`.

use std::time::{Duration, Instant};

use super::{CheckResult, names, short};
use crate::registry::{RegistryConfig, redact_url, take_url_credentials};

pub(super) async fn check_registry(
    config: Option<&RegistryConfig>,
    deadline: Instant,
) -> CheckResult {
    let name = names::REGISTRY;
    let Some(config) = config else {
        return CheckResult::skip(
            name,
            "not checked: no schema registry is configured (DELTASINK_SCHEMA_REGISTRY_URL, needed only for Avro topics)",
        );
    };
    let shown = redact_url(config.url.trim());
    let url_fix = "check DELTASINK_SCHEMA_REGISTRY_URL (scheme, host, port and any path prefix) and that the function can reach it (VPC subnets, security groups)";
    let mut url = match reqwest::Url::parse(config.url.trim()) {
        Ok(u) => u,
        Err(e) => {
            return CheckResult::fail(name, format!("{shown} is not a URL ({e})"), url_fix);
        }
    };
    // Credentials embedded in the URL are basic auth (as RegistryClient reads them).
    let auth = take_url_credentials(&mut url, config.basic_auth.clone());
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push("subjects");
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let timeout = config.timeout.min(remaining).max(Duration::from_millis(1));
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return CheckResult::fail(
                name,
                format!("the HTTP client cannot be built ({})", e.without_url()),
                url_fix,
            );
        }
    };
    let mut request = client.get(url).header(
        reqwest::header::ACCEPT,
        "application/vnd.schemaregistry.v1+json, application/json",
    );
    if let Some((user, password)) = &auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let timed_out = e.is_timeout();
            let cause = std::error::Error::source(&e)
                .map(error_chain)
                .unwrap_or_else(|| "request failed".into());
            return if timed_out {
                CheckResult::fail(
                    name,
                    format!(
                        "{shown} did not answer GET /subjects within {} ms",
                        timeout.as_millis()
                    ),
                    format!(
                        "{url_fix}; raise DELTASINK_SCHEMA_REGISTRY_TIMEOUT_MS if it is only slow"
                    ),
                )
            } else {
                CheckResult::fail(
                    name,
                    format!("{shown} cannot be reached ({})", short(&cause, 160)),
                    url_fix,
                )
            };
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match status.as_u16() {
        200 => match serde_json::from_str::<Vec<String>>(&body) {
            Ok(subjects) => CheckResult::pass(
                name,
                format!(
                    "{shown} answered GET /subjects with {} subjects",
                    subjects.len()
                ),
            ),
            Err(_) => CheckResult::fail(
                name,
                format!(
                    "{shown} answered GET /subjects, but not with a schema registry's list of subjects"
                ),
                url_fix,
            ),
        },
        401 | 403 => CheckResult::fail(
            name,
            format!("{shown} refused access (HTTP {status})"),
            "check DELTASINK_SCHEMA_REGISTRY_BASIC_AUTH (user:password, e.g. a Confluent Cloud API key and secret) and the key's permissions",
        ),
        404 => CheckResult::fail(
            name,
            format!("{shown} has no /subjects (HTTP 404): it is not a schema registry's base URL"),
            url_fix,
        ),
        _ => CheckResult::fail(
            name,
            format!(
                "{shown} answered GET /subjects with HTTP {status}: {}",
                short(&body, 160)
            ),
            "check the schema registry's health and logs",
        ),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
