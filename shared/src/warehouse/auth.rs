//! Credentials: a personal access token, or OAuth machine-to-machine for a service principal
//! (client credentials against `/oidc/v1/token`, the access token cached until shortly before
//! it expires). No secret ever reaches `Debug`, `Display`, an error or a log line.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::api;
use super::error::{Operation, SettingsError, WarehouseError};

/// A secret string. `Debug` prints `<redacted>`; there is no `Display`. Read it with
/// [`Secret::expose`] only to put it into a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// How the client authenticates to the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A personal access token (or any bearer token), sent as `Authorization: Bearer`.
    Token(Secret),
    /// OAuth machine-to-machine for a service principal.
    OAuthM2M {
        client_id: String,
        client_secret: Secret,
    },
}

impl Credentials {
    pub fn token(token: impl Into<String>) -> Result<Self, SettingsError> {
        let token = token.into().trim().to_string();
        if token.is_empty() {
            return Err(SettingsError::EmptyCredential {
                what: "the access token",
            });
        }
        Ok(Credentials::Token(Secret(token)))
    }

    pub fn oauth_m2m(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, SettingsError> {
        let client_id = client_id.into().trim().to_string();
        let client_secret = client_secret.into().trim().to_string();
        if client_id.is_empty() {
            return Err(SettingsError::EmptyCredential {
                what: "the OAuth client id",
            });
        }
        if client_secret.is_empty() {
            return Err(SettingsError::EmptyCredential {
                what: "the OAuth client secret",
            });
        }
        Ok(Credentials::OAuthM2M {
            client_id,
            client_secret: Secret(client_secret),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Token(_) => "access token",
            Credentials::OAuthM2M { .. } => "OAuth M2M",
        }
    }
}

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// Hands out the bearer token for each request, fetching and caching OAuth tokens.
pub(crate) struct Authenticator {
    credentials: Credentials,
    token_url: String,
    cached: Mutex<Option<CachedToken>>,
    /// One token fetch at a time; others wait and then reuse its token.
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Authenticator");
        s.field("credentials", &self.credentials);
        if matches!(self.credentials, Credentials::OAuthM2M { .. }) {
            s.field("token_url", &self.token_url)
                .field("cached_token", &self.cached_token().map(|_| "<redacted>"));
        }
        s.finish()
    }
}

/// Refresh this long before the token expires: a minute, or a quarter of a short lifetime.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(60))
}

impl Authenticator {
    pub(crate) fn new(credentials: Credentials, base_url: &str) -> Self {
        Authenticator {
            credentials,
            token_url: format!("{base_url}/oidc/v1/token"),
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether a 401 can be answered by fetching a new token.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self.credentials, Credentials::OAuthM2M { .. })
    }

    fn cached_token(&self) -> Option<Secret> {
        let cached = self.cached.lock().ok()?;
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The bearer token for the next request.
    pub(crate) async fn bearer(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Secret, WarehouseError> {
        let (client_id, client_secret) = match &self.credentials {
            Credentials::Token(token) => return Ok(token.clone()),
            Credentials::OAuthM2M {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let _guard = self.refresh.lock().await;
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let (token, lifetime) = self.fetch(http, client_id, client_secret, timeout).await?;
        let refresh_at = Instant::now() + lifetime.saturating_sub(refresh_margin(lifetime));
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(CachedToken {
                token: token.clone(),
                refresh_at,
            });
        }
        tracing::debug!(
            expires_in_s = lifetime.as_secs(),
            "fetched an OAuth access token"
        );
        Ok(token)
    }

    /// Forgets `rejected` (answered by a 401) unless another task already replaced it.
    pub(crate) fn invalidate(&self, rejected: &Secret) {
        if let Ok(mut cached) = self.cached.lock()
            && cached.as_ref().is_some_and(|c| &c.token == rejected)
        {
            *cached = None;
        }
    }

    /// `text` with every secret this authenticator knows replaced by `<redacted>`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut secrets = Vec::new();
        match &self.credentials {
            Credentials::Token(t) => secrets.push(t.0.clone()),
            Credentials::OAuthM2M { client_secret, .. } => secrets.push(client_secret.0.clone()),
        }
        if let Ok(cached) = self.cached.lock()
            && let Some(c) = cached.as_ref()
        {
            secrets.push(c.token.0.clone());
        }
        for secret in secrets {
            if !secret.is_empty() && out.contains(&secret) {
                out = out.replace(&secret, "<redacted>");
            }
        }
        out
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        client_secret: &Secret,
        timeout: Duration,
    ) -> Result<(Secret, Duration), WarehouseError> {
        let response = http
            .post(&self.token_url)
            .basic_auth(client_id, Some(client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body("grant_type=client_credentials&scope=all-apis")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| api::transport_error(Operation::Token, None, &e, |t| self.scrub(t)))?;
        let status = response.status();
        let retry_after = api::retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| api::transport_error(Operation::Token, None, &e, |t| self.scrub(t)))?;
        if !status.is_success() {
            return Err(api::http_error(
                Operation::Token,
                None,
                status.as_u16(),
                retry_after,
                &body,
                |t| self.scrub(t),
            ));
        }
        // Never quote this body: it holds the token.
        let parsed: api::TokenResponse =
            serde_json::from_slice(&body).map_err(|_| WarehouseError::Protocol {
                operation: Operation::Token,
                statement_id: None,
                detail: "the token response is not the expected JSON".into(),
            })?;
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WarehouseError::Protocol {
                operation: Operation::Token,
                statement_id: None,
                detail: "the token response has no access_token".into(),
            })?;
        let lifetime = parsed
            .expires_in
            .as_ref()
            .and_then(api::json_seconds)
            .unwrap_or(Duration::from_secs(3600));
        Ok((Secret(token), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let t = Credentials::token(" dapiXYZ ").map_err(|e| e.to_string());
        assert_eq!(t, Ok(Credentials::Token(Secret::new("dapiXYZ"))));
        let o = Credentials::oauth_m2m("app-id", "s3cr3t");
        let debug = format!("{o:?}");
        assert!(
            debug.contains("app-id") && !debug.contains("s3cr3t"),
            "{debug}"
        );
        assert_eq!(
            Credentials::token("  "),
            Err(SettingsError::EmptyCredential {
                what: "the access token"
            })
        );
        assert!(Credentials::oauth_m2m("id", "").is_err());
        assert!(Credentials::oauth_m2m("", "x").is_err());
    }

    #[test]
    fn margin_is_a_minute_or_a_quarter() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn scrub_replaces_known_secrets() {
        let a = Authenticator::new(Credentials::Token(Secret::new("dapiTOKEN")), "https://h");
        assert_eq!(a.scrub("bad token dapiTOKEN!"), "bad token <redacted>!");
    }
}
