//! Routing: which table a topic's records land in, and how that table is written.
//!
//! Rules are tried in order and the first that matches names the table; a topic no rule
//! matches uses the default rule (see [`Router::table_for`]). The result is then looked up in
//! the per-table settings (mode, primary key).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

/// A table identifier of one to three parts (`table`, `schema.table`,
/// `catalog.schema.table`). Parts are kept unquoted; SQL quotes each one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName(Arc<[String]>);

impl TableName {
    /// Parses a dotted name. Parts may be quoted with backticks to hold dots
    /// (`` schema.`a.b` ``).
    pub fn parse(s: &str) -> Result<TableName, String> {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = s.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '`' if quoted && chars.peek() == Some(&'`') => {
                    chars.next();
                    current.push('`');
                }
                '`' => quoted = !quoted,
                '.' if !quoted => parts.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        if quoted {
            return Err(format!("table name {s:?} has an unclosed backtick"));
        }
        parts.push(current);
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(format!(
                "table name {s:?} must be `table`, `schema.table` or `catalog.schema.table` with non-empty parts"
            ));
        }
        Ok(TableName(parts.into()))
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The last part.
    pub fn table(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or_default()
    }
}

impl fmt::Display for TableName {
    /// Dotted form; parts that contain a dot or a backtick are backtick-quoted so that
    /// [`TableName::parse`] reads the same name back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if part.contains(['.', '`']) {
                write!(f, "`{}`", part.replace('`', "``"))?;
            } else {
                f.write_str(part)?;
            }
        }
        Ok(())
    }
}

/// How a table is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableMode {
    /// Upsert when the table has a primary key (configured, or records carry Kafka keys),
    /// append otherwise.
    Auto,
    /// Current state per primary key (MERGE), deletes kept as tombstones.
    Upsert,
    /// Every change as its own row.
    Append,
    /// Raw ingestion table: `key`, `value` and Kafka metadata.
    Raw,
}

impl TableMode {
    pub fn parse(s: &str) -> Option<TableMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(TableMode::Auto),
            "upsert" => Some(TableMode::Upsert),
            "append" => Some(TableMode::Append),
            "raw" | "ingestion" => Some(TableMode::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TableMode::Auto => "auto",
            TableMode::Upsert => "upsert",
            TableMode::Append => "append",
            TableMode::Raw => "raw",
        }
    }
}

/// Settings of one table (an entry of `DELTASINK_TABLES`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TableSettings {
    pub mode: Option<TableMode>,
    /// Primary key columns; when absent, an upsert table takes its key from the Kafka key.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Settings read by the load and maintain functions; stage ignores them.
    #[serde(default)]
    pub hard_delete: Option<bool>,
    #[serde(default)]
    pub tombstone_retention_hours: Option<u64>,
    #[serde(default)]
    pub backfill_source: Option<String>,
    #[serde(default)]
    pub backfill_dedup_columns: Option<Vec<String>>,
}

/// One routing rule (an element of `DELTASINK_ROUTES`).
#[derive(Debug, Clone)]
pub enum RouteRule {
    /// `{"strip_prefix": "source_*."}`: a topic that starts with the prefix (where `*`
    /// matches any run of characters other than `.`) becomes the rest of the name.
    StripPrefix { strip_prefix: String },
    /// `{"regex": "^cdc\\.(\\w+)\\.(\\w+)$", "table": "main.{1}.{2}"}`: captures by number
    /// or name (`{name}`) fill the table template. The regex must match the whole topic.
    Regex { regex: String, table: String },
    /// `{"map": {"topic": "schema.table"}}`: exact topic names.
    Map { map: HashMap<String, String> },
}

impl RouteRule {
    /// Parses the JSON array of `DELTASINK_ROUTES`, saying which rule is wrong and why.
    pub fn parse_list(json: &str) -> Result<Vec<RouteRule>, String> {
        let items: Vec<serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| format!("expected a JSON array of rules: {e}"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| RouteRule::from_json(item).map_err(|e| format!("rule {i}: {e}")))
            .collect()
    }

    fn from_json(item: &serde_json::Value) -> Result<RouteRule, String> {
        let obj = item
            .as_object()
            .ok_or("expected an object such as {\"strip_prefix\": \"source_*.\"}")?;
        let text = |name: &str| -> Result<String, String> {
            obj.get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("`{name}` must be a string"))
        };
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        match keys.as_slice() {
            ["strip_prefix"] => Ok(RouteRule::StripPrefix {
                strip_prefix: text("strip_prefix")?,
            }),
            ["regex", "table"] | ["table", "regex"] => Ok(RouteRule::Regex {
                regex: text("regex")?,
                table: text("table")?,
            }),
            ["map"] => {
                let map = obj
                    .get("map")
                    .and_then(|m| m.as_object())
                    .ok_or("`map` must be an object of topic → table")?;
                let mut out = HashMap::with_capacity(map.len());
                for (topic, table) in map {
                    let table = table.as_str().ok_or_else(|| {
                        format!("map entry {topic:?} must be a table name string")
                    })?;
                    out.insert(topic.clone(), table.to_string());
                }
                Ok(RouteRule::Map { map: out })
            }
            _ => Err(format!(
                "unknown rule with fields {keys:?}: expected {{strip_prefix}}, {{regex, table}} or {{map}}"
            )),
        }
    }
}

enum CompiledRule {
    StripPrefix(Regex),
    Regex(Regex, String),
    Map(HashMap<String, TableName>),
}

/// A `*` wildcard pattern over a whole string (used for topic-name settings).
#[derive(Debug, Clone)]
pub struct Glob(Regex);

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let escaped: Vec<String> = pattern.split('*').map(regex::escape).collect();
        Regex::new(&format!("^{}$", escaped.join(".*")))
            .map(Glob)
            .map_err(|e| format!("pattern {pattern:?}: {e}"))
    }

    pub fn matches(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// Where a topic's records go and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub table: TableName,
    pub mode: TableMode,
    pub primary_key: Vec<String>,
}

/// Topic → table routing with per-table settings; built once at cold start.
pub struct Router {
    rules: Vec<CompiledRule>,
    tables: HashMap<TableName, TableSettings>,
    default_mode: TableMode,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules.len())
            .field("tables", &self.tables)
            .field("default_mode", &self.default_mode)
            .finish()
    }
}

impl Clone for Router {
    fn clone(&self) -> Self {
        Router {
            rules: self
                .rules
                .iter()
                .map(|r| match r {
                    CompiledRule::StripPrefix(re) => CompiledRule::StripPrefix(re.clone()),
                    CompiledRule::Regex(re, t) => CompiledRule::Regex(re.clone(), t.clone()),
                    CompiledRule::Map(m) => CompiledRule::Map(m.clone()),
                })
                .collect(),
            tables: self.tables.clone(),
            default_mode: self.default_mode,
        }
    }
}

impl Router {
    /// Compiles the rules. Errors say which rule or table entry is wrong (prefixed `table`
    /// for table settings so that the caller can name the right variable).
    pub fn new(
        rules: Vec<RouteRule>,
        tables: HashMap<String, TableSettings>,
        default_mode: TableMode,
    ) -> Result<Router, String> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            compiled.push(match rule {
                RouteRule::StripPrefix { strip_prefix } => {
                    if strip_prefix.is_empty() {
                        return Err(format!("rule {i}: strip_prefix is empty"));
                    }
                    let parts: Vec<String> = strip_prefix.split('*').map(regex::escape).collect();
                    let re = format!("^{}(.+)$", parts.join("[^.]*"));
                    CompiledRule::StripPrefix(
                        Regex::new(&re).map_err(|e| format!("rule {i}: {e}"))?,
                    )
                }
                RouteRule::Regex { regex, table } => {
                    let anchored = format!("^(?:{regex})$");
                    let re = Regex::new(&anchored)
                        .map_err(|e| format!("rule {i}: invalid regex {regex:?}: {e}"))?;
                    check_template(&re, &table).map_err(|e| format!("rule {i}: {e}"))?;
                    CompiledRule::Regex(re, table)
                }
                RouteRule::Map { map } => {
                    let mut out = HashMap::with_capacity(map.len());
                    for (topic, table) in map {
                        let name = TableName::parse(&table)
                            .map_err(|e| format!("rule {i}: topic {topic:?}: {e}"))?;
                        out.insert(topic, name);
                    }
                    CompiledRule::Map(out)
                }
            });
        }
        let mut parsed = HashMap::with_capacity(tables.len());
        for (name, settings) in tables {
            let table = TableName::parse(&name).map_err(|e| format!("table entry: {e}"))?;
            if settings.mode == Some(TableMode::Raw) && !settings.primary_key.is_empty() {
                return Err(format!(
                    "table {name:?}: a raw table has no primary key; remove primary_key or choose upsert"
                ));
            }
            if settings.primary_key.iter().any(|c| c.is_empty()) {
                return Err(format!(
                    "table {name:?}: primary_key has an empty column name"
                ));
            }
            parsed.insert(table, settings);
        }
        Ok(Router {
            rules: compiled,
            tables: parsed,
            default_mode,
        })
    }

    /// The table a topic routes to: the first matching rule, else the default rule, which
    /// takes the last two dot-separated parts of the topic as `schema.table` (Debezium's
    /// `<prefix>.<schema>.<table>` topics) or the whole topic as the table name.
    pub fn table_for(&self, topic: &str) -> TableName {
        for rule in &self.rules {
            let name = match rule {
                CompiledRule::StripPrefix(re) => re
                    .captures(topic)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_string()),
                CompiledRule::Regex(re, template) => {
                    re.captures(topic).map(|c| expand(template, &c))
                }
                CompiledRule::Map(map) => {
                    if let Some(t) = map.get(topic) {
                        return t.clone();
                    }
                    None
                }
            };
            if let Some(name) = name
                && let Ok(table) = TableName::parse(&name)
            {
                return table;
            }
        }
        let parts: Vec<&str> = topic.split('.').filter(|p| !p.is_empty()).collect();
        let parts: Vec<String> = match parts.len() {
            0 => vec![topic.to_string()],
            1 => vec![parts[0].to_string()],
            n => vec![parts[n - 2].to_string(), parts[n - 1].to_string()],
        };
        TableName(parts.into())
    }

    /// The full route of a topic.
    pub fn route(&self, topic: &str) -> Route {
        let table = self.table_for(topic);
        let settings = self.tables.get(&table);
        Route {
            mode: settings.and_then(|s| s.mode).unwrap_or(self.default_mode),
            primary_key: settings.map(|s| s.primary_key.clone()).unwrap_or_default(),
            table,
        }
    }

    pub fn settings(&self, table: &TableName) -> Option<&TableSettings> {
        self.tables.get(table)
    }
}

fn check_template(re: &Regex, template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("table template {template:?} has an unclosed `{{`"));
        };
        let name = &rest[start + 1..start + len];
        let known = match name.parse::<usize>() {
            Ok(n) => n < re.captures_len(),
            Err(_) => re.capture_names().flatten().any(|c| c == name),
        };
        if !known {
            return Err(format!(
                "table template {template:?} refers to capture {{{name}}}, which the regex does not have"
            ));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

fn expand(template: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        let m = match name.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => caps.name(name),
        };
        out.push_str(m.map(|m| m.as_str()).unwrap_or_default());
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(rules: &str, tables: &str) -> Router {
        Router::new(
            RouteRule::parse_list(rules).unwrap(),
            serde_json::from_str(tables).unwrap(),
            TableMode::Auto,
        )
        .unwrap()
    }

    #[test]
    fn strip_prefix_with_wildcard_id() {
        let r = router(r#"[{"strip_prefix": "source_*."}]"#, "{}");
        assert_eq!(
            r.table_for("source_42.sales.orders").to_string(),
            "sales.orders"
        );
        // Not matching: falls to the default rule.
        assert_eq!(
            r.table_for("other.sales.orders").to_string(),
            "sales.orders"
        );
        assert_eq!(r.table_for("orders").to_string(), "orders");
    }

    #[test]
    fn regex_with_numbered_and_named_captures() {
        let r = router(
            r#"[{"regex": "cdc\\.(?P<db>\\w+)\\.(\\w+)", "table": "main.{db}.{2}"}]"#,
            "{}",
        );
        assert_eq!(
            r.table_for("cdc.shop.orders").parts(),
            ["main", "shop", "orders"]
        );
        // The regex must match the whole topic.
        assert_eq!(r.table_for("xcdc.shop.orders.v2").parts(), ["orders", "v2"]);
    }

    #[test]
    fn explicit_map_wins_in_order_and_settings_apply() {
        let r = router(
            r#"[{"map": {"legacy-orders": "sales.`orders.v1`"}}, {"strip_prefix": "legacy-"}]"#,
            r#"{"sales.`orders.v1`": {"mode": "append"}, "customers": {"primary_key": ["id"]}}"#,
        );
        let route = r.route("legacy-orders");
        assert_eq!(route.table.parts(), ["sales", "orders.v1"]);
        assert_eq!(route.mode, TableMode::Append);
        let route = r.route("legacy-customers");
        assert_eq!(route.table.parts(), ["customers"]);
        assert_eq!(route.primary_key, ["id"]);
        assert_eq!(route.mode, TableMode::Auto);
    }

    #[test]
    fn bad_rules_are_explained() {
        let bad = |rules: &str, tables: &str| {
            Router::new(
                RouteRule::parse_list(rules).unwrap(),
                serde_json::from_str(tables).unwrap(),
                TableMode::Auto,
            )
            .unwrap_err()
        };
        assert!(bad(r#"[{"regex": "(a", "table": "x"}]"#, "{}").contains("invalid regex"));
        assert!(bad(r#"[{"regex": "(a)", "table": "{2}"}]"#, "{}").contains("{2}"));
        assert!(bad(r#"[{"map": {"t": "a..b"}}]"#, "{}").contains("non-empty"));
        assert!(bad("[]", r#"{"r": {"mode": "raw", "primary_key": ["id"]}}"#).starts_with("table"));
        let e = RouteRule::parse_list(r#"[{"strip_prefix": "a"}, {"regex": "x"}]"#).unwrap_err();
        assert!(e.starts_with("rule 1: unknown rule"), "{e}");
        let e = RouteRule::parse_list(r#"[{"map": {"t": 5}}]"#).unwrap_err();
        assert!(e.contains("\"t\" must be a table name"), "{e}");
    }

    #[test]
    fn table_names_round_trip_through_display() {
        for s in ["t", "s.t", "c.s.t", "s.`a.b`", "`we``ird`"] {
            let name = TableName::parse(s).unwrap();
            assert_eq!(TableName::parse(&name.to_string()).unwrap(), name, "{s}");
        }
        assert_eq!(TableName::parse("`we``ird`").unwrap().parts(), ["we`ird"]);
        assert!(TableName::parse("a.b.c.d").is_err());
        assert!(TableName::parse("`open").is_err());
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(Glob::new("cdc.*").unwrap().matches("cdc.a.b"));
        assert!(!Glob::new("cdc.*").unwrap().matches("xcdc.a"));
        assert!(Glob::new("orders").unwrap().matches("orders"));
        assert!(!Glob::new("orders").unwrap().matches("orders2"));
    }
}
