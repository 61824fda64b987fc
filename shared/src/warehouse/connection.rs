//! Connection settings as users copy them from the Databricks UI: server hostname and HTTP
//! path, a JDBC URL, or a warehouse id. Pure parsing; every bad input is a typed
//! [`SettingsError`] that names the offending part (never a credential).

use std::fmt;
use std::net::Ipv4Addr;

use super::auth::Secret;
use super::error::SettingsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    /// Only for loopback hosts (the local warehouse).
    Http,
}

/// Where the statements go: the workspace host, the SQL warehouse, and the default catalog
/// and schema for unqualified names.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    scheme: Scheme,
    /// Lower-case host, with `:port` unless it is the scheme's default.
    host: String,
    warehouse_id: String,
    catalog: Option<String>,
    schema: Option<String>,
    jdbc_password: Option<Secret>,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("base_url", &self.base_url())
            .field("warehouse_id", &self.warehouse_id)
            .field("catalog", &self.catalog)
            .field("schema", &self.schema)
            .field(
                "jdbc_password",
                &self.jdbc_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ConnectionSettings {
    /// One entry point for whatever the user copied: `connection` is a JDBC URL
    /// (`jdbc:databricks://…` or `jdbc:spark://…`), an HTTP path (`/sql/1.0/warehouses/<id>`)
    /// or a bare warehouse id. `host` is required unless `connection` is a JDBC URL; with a
    /// JDBC URL it may be given too, but must then name the same host.
    pub fn parse(host: Option<&str>, connection: &str) -> Result<Self, SettingsError> {
        let connection = connection.trim();
        let host = host.map(str::trim).filter(|h| !h.is_empty());
        if starts_with_ci(connection, "jdbc:") {
            let settings = Self::from_jdbc_url(connection)?;
            if let Some(host) = host {
                let (_, given) = parse_host(host, None)?;
                if given != settings.host {
                    return Err(SettingsError::HostMismatch {
                        host: given,
                        jdbc_host: settings.host,
                    });
                }
            }
            return Ok(settings);
        }
        let host = host.ok_or(SettingsError::MissingHost)?;
        if connection.contains('/') {
            Self::from_http_path(host, connection)
        } else {
            Self::from_warehouse_id(host, connection)
        }
    }

    /// Server hostname (with or without `https://`) and HTTP path from the warehouse's
    /// Connection details.
    pub fn from_http_path(host: &str, http_path: &str) -> Result<Self, SettingsError> {
        let (scheme, host) = parse_host(host, None)?;
        let warehouse_id = parse_http_path(http_path)?;
        Ok(Self::new(scheme, host, warehouse_id))
    }

    /// A bare warehouse id and the server hostname.
    pub fn from_warehouse_id(host: &str, warehouse_id: &str) -> Result<Self, SettingsError> {
        let (scheme, host) = parse_host(host, None)?;
        let warehouse_id = validate_warehouse_id(warehouse_id.trim())?;
        Ok(Self::new(scheme, host, warehouse_id))
    }

    /// A JDBC URL from the warehouse's Connection details, for example
    /// `jdbc:databricks://adb-1.2.azuredatabricks.net:443/default;transportMode=http;ssl=1;
    /// AuthMech=3;httpPath=/sql/1.0/warehouses/abc;ConnCatalog=main;ConnSchema=sales`.
    /// Property names are case-insensitive; `{…}` quotes a value containing `;`. The
    /// catalog comes from `ConnCatalog`, the schema from `ConnSchema` (or the URL's database
    /// part when it is not `default`). `ssl=0` is allowed only for loopback hosts. A `PWD`
    /// is kept only as a redacted [`Secret`] ([`Self::jdbc_password`]).
    pub fn from_jdbc_url(url: &str) -> Result<Self, SettingsError> {
        let url = url.trim();
        let rest = ["jdbc:databricks://", "jdbc:spark://"]
            .iter()
            .find_map(|prefix| strip_prefix_ci(url, prefix))
            .ok_or(SettingsError::NotJdbcUrl)?;
        let (head, properties) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (authority, database) = match head.find('/') {
            Some(i) => (&head[..i], head[i + 1..].trim()),
            None => (head, ""),
        };

        let mut http_path = None;
        let mut catalog = None;
        let mut schema = None;
        let mut ssl = None;
        let mut password = None;
        for (key, value) in jdbc_properties(properties)? {
            match key.to_ascii_lowercase().as_str() {
                "httppath" => http_path = Some(value),
                "conncatalog" => catalog = Some(value),
                "connschema" => schema = Some(value),
                "ssl" => ssl = Some(value),
                "pwd" => password = Some(Secret::new(value)),
                _ => {}
            }
        }

        let scheme = match ssl.as_deref().map(str::trim) {
            None | Some("1") | Some("true") => Scheme::Https,
            Some("0") | Some("false") => Scheme::Http,
            Some(_) => {
                return Err(SettingsError::InvalidJdbcProperty {
                    key: "ssl".into(),
                    problem: "expected 1 or 0".into(),
                });
            }
        };
        let (scheme, host) = parse_host(authority, Some(scheme))?;
        let http_path = http_path.ok_or(SettingsError::MissingJdbcProperty { key: "httpPath" })?;
        let warehouse_id = parse_http_path(&http_path)?;
        let schema = schema.or_else(|| {
            (!database.is_empty() && !database.eq_ignore_ascii_case("default"))
                .then(|| database.to_string())
        });
        let mut settings = Self::new(scheme, host, warehouse_id);
        settings.catalog = non_empty(catalog);
        settings.schema = non_empty(schema);
        settings.jdbc_password = password.filter(|p| !p.expose().is_empty());
        Ok(settings)
    }

    fn new(scheme: Scheme, host: String, warehouse_id: String) -> Self {
        ConnectionSettings {
            scheme,
            host,
            warehouse_id,
            catalog: None,
            schema: None,
            jdbc_password: None,
        }
    }

    /// The default catalog for unqualified names (blank clears it).
    pub fn with_catalog(mut self, catalog: impl Into<String>) -> Self {
        self.catalog = non_empty(Some(catalog.into()));
        self
    }

    /// The default schema for unqualified names (blank clears it).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = non_empty(Some(schema.into()));
        self
    }

    /// `https://host[:port]` (or `http://` for loopback), without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!("{scheme}://{}", self.host)
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Host with `:port` when not the scheme's default.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn warehouse_id(&self) -> &str {
        &self.warehouse_id
    }

    pub fn catalog(&self) -> Option<&str> {
        self.catalog.as_deref()
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The `PWD` of a JDBC URL (with `AuthMech=3` and `UID=token`, a personal access token).
    pub fn jdbc_password(&self) -> Option<&Secret> {
        self.jdbc_password.as_ref()
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    starts_with_ci(s, prefix).then(|| &s[prefix.len()..])
}

/// `key=value` pairs separated by `;`; a value may be wrapped in `{…}` to contain `;`.
/// Errors name the key only, never a value (it may be a password), and never echo a segment
/// without `=` (it may be a pasted secret).
fn jdbc_properties(text: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut index = 0;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(out);
        }
        index += 1;
        let segment_end = rest.find(';').unwrap_or(rest.len());
        let Some(eq) = rest[..segment_end].find('=') else {
            return Err(SettingsError::InvalidJdbcProperty {
                key: format!("#{index}"),
                problem: "expected key=value".into(),
            });
        };
        let key = rest[..eq].trim();
        if key.is_empty() {
            return Err(SettingsError::InvalidJdbcProperty {
                key: format!("#{index}"),
                problem: "a property without a name".into(),
            });
        }
        let after = rest[eq + 1..].trim_start();
        if let Some(braced) = after.strip_prefix('{') {
            let close = braced
                .find('}')
                .ok_or_else(|| SettingsError::InvalidJdbcProperty {
                    key: printable_key(key),
                    problem: "`{` without a closing `}`".into(),
                })?;
            let tail = braced[close + 1..].trim_start();
            if !(tail.is_empty() || tail.starts_with(';')) {
                return Err(SettingsError::InvalidJdbcProperty {
                    key: printable_key(key),
                    problem: "text after the closing `}`".into(),
                });
            }
            out.push((key.to_string(), braced[..close].to_string()));
            rest = tail;
        } else {
            let end = after.find(';').unwrap_or(after.len());
            out.push((key.to_string(), after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
}

/// A key for an error message: short and plain, or elided (it might be a pasted secret).
fn printable_key(key: &str) -> String {
    if key.len() <= 32 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        key.to_string()
    } else {
        "<unprintable>".to_string()
    }
}

/// Scheme and normalised `host[:port]`. `default_scheme` applies when the input has none
/// (https unless a JDBC URL said `ssl=0`).
fn parse_host(
    input: &str,
    default_scheme: Option<Scheme>,
) -> Result<(Scheme, String), SettingsError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SettingsError::MissingHost);
    }
    let (scheme, rest) = if let Some(rest) = strip_prefix_ci(s, "https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = strip_prefix_ci(s, "http://") {
        (Scheme::Http, rest)
    } else if let Some(i) = s.find("://") {
        let scheme = &s[..i];
        let host = s[i + 3..].split(['/', '?', '#']).next().unwrap_or_default();
        return Err(SettingsError::UnsupportedScheme {
            host: host.to_string(),
            scheme: if scheme.len() <= 16 {
                scheme.to_string()
            } else {
                "<long>".into()
            },
        });
    } else {
        (default_scheme.unwrap_or(Scheme::Https), s)
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(SettingsError::HostHasCredentials);
    }
    // Tolerate a trailing `/` and the workspace URL's `?o=<org id>` or `#…`.
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    if !path.is_empty() && path != "/" {
        return Err(SettingsError::HostHasPath {
            host: authority.to_string(),
            path: path.to_string(),
        });
    }
    let (name, port) = split_port(authority)?;
    let name = name.to_ascii_lowercase();
    validate_host_name(&name)?;
    let loopback = is_loopback(&name);
    if scheme == Scheme::Http && !loopback {
        return Err(SettingsError::InsecureHost { host: name });
    }
    let default_port = match scheme {
        Scheme::Https => 443,
        Scheme::Http => 80,
    };
    let host = match port {
        Some(p) if p != default_port => format!("{name}:{p}"),
        _ => name,
    };
    Ok((scheme, host))
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), SettingsError> {
    let (name, port) = if authority.starts_with('[') {
        let close = authority
            .find(']')
            .ok_or_else(|| SettingsError::InvalidHost {
                host: authority.to_string(),
                problem: "unterminated `[` in an IPv6 address",
            })?;
        let after = &authority[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => {
                return Err(SettingsError::InvalidHost {
                    host: authority.to_string(),
                    problem: "unexpected text after the IPv6 address",
                });
            }
        };
        (&authority[..=close], port)
    } else {
        match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            SettingsError::InvalidHost {
                host: authority.to_string(),
                problem: "the port must be a number from 1 to 65535",
            }
        })?),
    };
    Ok((name, port))
}

fn validate_host_name(name: &str) -> Result<(), SettingsError> {
    let bad = |problem| {
        Err(SettingsError::InvalidHost {
            host: name.to_string(),
            problem,
        })
    };
    if name.is_empty() {
        return bad("the host name is empty");
    }
    if let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("not an IPv6 address");
        }
        return Ok(());
    }
    if name.len() > 253 {
        return bad("the host name is longer than 253 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return bad("the host name may contain only letters, digits, `-` and `.`");
    }
    if name.split('.').any(|label| label.is_empty()) {
        return bad("the host name has an empty label (`..` or a leading or trailing `.`)");
    }
    Ok(())
}

fn is_loopback(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The warehouse id of a SQL warehouse HTTP path. All-purpose cluster paths are refused
/// with a message saying what to use instead.
fn parse_http_path(http_path: &str) -> Result<String, SettingsError> {
    let shown = http_path.trim();
    let path = shown.split(['?', '#']).next().unwrap_or_default();
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Err(SettingsError::MissingHttpPath);
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    match segments.as_slice() {
        ["sql", "1.0", "warehouses" | "endpoints", id] => validate_warehouse_id(id),
        ["sql", "protocolv1", ..] => Err(SettingsError::AllPurposeCluster {
            http_path: shown.to_string(),
        }),
        _ => Err(SettingsError::NotAWarehousePath {
            http_path: shown.to_string(),
        }),
    }
}

fn validate_warehouse_id(id: &str) -> Result<String, SettingsError> {
    let bad = |problem| {
        Err(SettingsError::InvalidWarehouseId {
            id: if id.len() <= 64 {
                id.to_string()
            } else {
                format!("{}…", id.chars().take(16).collect::<String>())
            },
            problem,
        })
    };
    if id.is_empty() {
        return bad("the warehouse id is empty");
    }
    if id.len() > 64 {
        return bad("too long for a warehouse id");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("a warehouse id has only letters, digits, `-` and `_`");
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(host: Option<&str>, connection: &str) -> ConnectionSettings {
        match ConnectionSettings::parse(host, connection) {
            Ok(s) => s,
            Err(e) => panic!("{connection}: {e}"),
        }
    }

    fn err(host: Option<&str>, connection: &str) -> SettingsError {
        match ConnectionSettings::parse(host, connection) {
            Ok(s) => panic!("{connection}: parsed as {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn hostname_and_http_path() {
        for host in [
            "adb-123.4.azuredatabricks.net",
            "https://adb-123.4.azuredatabricks.net",
            "https://ADB-123.4.azuredatabricks.net/",
            " https://adb-123.4.azuredatabricks.net:443 ",
            "https://adb-123.4.azuredatabricks.net/?o=1234567890#",
        ] {
            let s = ok(Some(host), "/sql/1.0/warehouses/abc123def");
            assert_eq!(
                s.base_url(),
                "https://adb-123.4.azuredatabricks.net",
                "{host}"
            );
            assert_eq!(s.warehouse_id(), "abc123def");
            assert_eq!(s.catalog(), None);
            assert_eq!(s.schema(), None);
        }
        let s = ok(Some("dbc-1.cloud.databricks.com"), "sql/1.0/endpoints/e1/");
        assert_eq!(s.warehouse_id(), "e1");
        let s = ok(Some("h.example.com:8443"), "/sql/1.0/warehouses/w");
        assert_eq!(s.base_url(), "https://h.example.com:8443");
        assert_eq!(s.host(), "h.example.com:8443");
    }

    #[test]
    fn bare_warehouse_id_and_defaults() {
        let s = ok(Some("adb-1.azuredatabricks.net"), "abc123")
            .with_catalog("main")
            .with_schema(" sales ");
        assert_eq!(s.warehouse_id(), "abc123");
        assert_eq!(s.catalog(), Some("main"));
        assert_eq!(s.schema(), Some("sales"));
        assert_eq!(s.clone().with_catalog("  ").catalog(), None);
        let s = ConnectionSettings::from_warehouse_id("h.net", "w-1_x")
            .map(|s| s.warehouse_id().to_string());
        assert_eq!(s, Ok("w-1_x".to_string()));
        assert!(matches!(
            err(Some("h.net"), "abc 123"),
            SettingsError::InvalidWarehouseId { .. }
        ));
        assert!(matches!(
            err(Some("h.net"), ""),
            SettingsError::InvalidWarehouseId { .. }
        ));
        assert_eq!(err(None, "abc123"), SettingsError::MissingHost);
    }

    #[test]
    fn jdbc_url_with_catalog_and_schema() {
        let url = "jdbc:databricks://adb-123.4.azuredatabricks.net:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/abc123;ConnCatalog=main;ConnSchema=sales";
        let s = ok(None, url);
        assert_eq!(s.base_url(), "https://adb-123.4.azuredatabricks.net");
        assert_eq!(s.warehouse_id(), "abc123");
        assert_eq!(s.catalog(), Some("main"));
        assert_eq!(s.schema(), Some("sales"));
        assert!(s.jdbc_password().is_none());
        // Same host given separately is fine; a different one is not.
        assert_eq!(ok(Some("https://adb-123.4.azuredatabricks.net"), url), s);
        assert!(matches!(
            err(Some("other.net"), url),
            SettingsError::HostMismatch { .. }
        ));
        // Defaults may still be overridden.
        assert_eq!(s.with_schema("other").schema(), Some("other"));
    }

    #[test]
    fn jdbc_spark_url_case_insensitive_keys_and_database_schema() {
        let s = ok(
            None,
            "JDBC:SPARK://dbc-9.cloud.databricks.com:443/analytics;transportmode=http;SSL=1;HTTPPATH=sql/1.0/warehouses/w9;AuthMech=3;UID=token;PWD=dapiSECRET",
        );
        assert_eq!(s.base_url(), "https://dbc-9.cloud.databricks.com");
        assert_eq!(s.warehouse_id(), "w9");
        assert_eq!(s.catalog(), None);
        assert_eq!(s.schema(), Some("analytics"));
        assert_eq!(s.jdbc_password().map(Secret::expose), Some("dapiSECRET"));
        let debug = format!("{s:?}");
        assert!(!debug.contains("dapiSECRET"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn jdbc_braced_values_and_errors() {
        let s = ok(
            None,
            "jdbc:databricks://h.net/default;PWD={a;b=c};httpPath=/sql/1.0/warehouses/w;",
        );
        assert_eq!(s.jdbc_password().map(Secret::expose), Some("a;b=c"));
        assert_eq!(s.schema(), None);
        assert_eq!(
            err(None, "jdbc:databricks://h.net:443/default;ssl=1"),
            SettingsError::MissingJdbcProperty { key: "httpPath" }
        );
        let e = err(
            None,
            "jdbc:databricks://h.net;PWD={never-closed;httpPath=/sql/1.0/warehouses/w",
        );
        assert!(matches!(e, SettingsError::InvalidJdbcProperty { ref key, .. } if key == "PWD"));
        assert!(!e.to_string().contains("never-closed"));
        assert_eq!(err(None, "jdbc:mysql://h/db"), SettingsError::NotJdbcUrl);
        assert!(matches!(
            err(
                None,
                "jdbc:databricks://h.net;ssl=2;httpPath=/sql/1.0/warehouses/w"
            ),
            SettingsError::InvalidJdbcProperty { .. }
        ));
        let e = err(
            None,
            "jdbc:databricks://h.net;dapiLEAKED;httpPath=/sql/1.0/warehouses/w",
        );
        assert!(
            matches!(e, SettingsError::InvalidJdbcProperty { ref key, .. } if key == "#1"),
            "{e:?}"
        );
        assert!(!e.to_string().contains("dapiLEAKED"));
    }

    #[test]
    fn jdbc_errors_never_echo_the_password() {
        let secret = "dapi0123456789abcdef";
        for url in [
            format!(
                "jdbc:databricks://h.net:443/default;PWD={secret};httpPath=/sql/protocolv1/o/1/0123-abc"
            ),
            format!("jdbc:databricks://h.net:443/default;PWD={secret}"),
            format!(
                "jdbc:databricks://h.net:443/default;ssl=0;PWD={secret};httpPath=/sql/1.0/warehouses/w"
            ),
            format!(
                "jdbc:databricks://h.net:99999/default;PWD={secret};httpPath=/sql/1.0/warehouses/w"
            ),
        ] {
            let e = err(None, &url);
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }

    #[test]
    fn all_purpose_cluster_paths_are_refused() {
        let path = "sql/protocolv1/o/1234567890123456/0123-456789-abcdefgh";
        let e = err(Some("adb-1.azuredatabricks.net"), path);
        assert_eq!(
            e,
            SettingsError::AllPurposeCluster {
                http_path: path.into()
            }
        );
        let message = e.to_string();
        assert!(message.contains("is an all-purpose cluster"), "{message}");
        assert!(
            message.contains(
                "use the HTTP path /sql/1.0/warehouses/<id> from the warehouse's Connection details"
            ),
            "{message}"
        );
        let e = err(
            None,
            &format!(
                "jdbc:spark://adb-1.azuredatabricks.net:443/default;transportMode=http;ssl=1;httpPath={path};AuthMech=3"
            ),
        );
        assert!(matches!(e, SettingsError::AllPurposeCluster { .. }));
        assert!(matches!(
            err(Some("h.net"), "/api/2.0/sql/statements"),
            SettingsError::NotAWarehousePath { .. }
        ));
        assert_eq!(err(Some("h.net"), "/"), SettingsError::MissingHttpPath);
    }

    #[test]
    fn http_only_for_loopback() {
        for host in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://127.0.0.2",
            "http://[::1]:9000",
        ] {
            let s = ok(Some(host), "/sql/1.0/warehouses/local");
            assert_eq!(s.scheme(), Scheme::Http);
            assert_eq!(s.base_url(), host.to_ascii_lowercase());
        }
        assert_eq!(
            ok(Some("http://localhost:80"), "w").base_url(),
            "http://localhost"
        );
        assert_eq!(
            err(Some("http://adb-1.azuredatabricks.net"), "w"),
            SettingsError::InsecureHost {
                host: "adb-1.azuredatabricks.net".into()
            }
        );
        assert!(matches!(
            err(Some("http://127.0.0.1.evil.com"), "w"),
            SettingsError::InsecureHost { .. }
        ));
        let s = ok(
            None,
            "jdbc:databricks://127.0.0.1:8123/default;ssl=0;httpPath=/sql/1.0/warehouses/local",
        );
        assert_eq!(s.base_url(), "http://127.0.0.1:8123");
        assert!(matches!(
            err(
                None,
                "jdbc:databricks://h.net:443/default;ssl=0;httpPath=/sql/1.0/warehouses/w"
            ),
            SettingsError::InsecureHost { .. }
        ));
    }

    #[test]
    fn bad_hosts_are_named() {
        assert!(matches!(
            err(Some("ftp://h.net"), "w"),
            SettingsError::UnsupportedScheme { ref scheme, .. } if scheme == "ftp"
        ));
        assert!(matches!(
            err(Some("https://h.net/sql/1.0/warehouses/w"), "w"),
            SettingsError::HostHasPath { ref path, .. } if path == "/sql/1.0/warehouses/w"
        ));
        assert_eq!(
            err(Some("https://token:dapiX@h.net"), "w"),
            SettingsError::HostHasCredentials
        );
        assert!(matches!(
            err(Some("h.net:0"), "w"),
            SettingsError::InvalidHost { .. }
        ));
        assert!(matches!(
            err(Some("h.net:x"), "w"),
            SettingsError::InvalidHost { .. }
        ));
        assert!(matches!(
            err(Some("h_1.net"), "w"),
            SettingsError::InvalidHost { .. }
        ));
        assert!(matches!(
            err(Some("h..net"), "w"),
            SettingsError::InvalidHost { .. }
        ));
        assert_eq!(err(Some("  "), "w"), SettingsError::MissingHost);
    }
}
