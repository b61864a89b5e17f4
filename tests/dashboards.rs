//! The Grafana dashboards and Prometheus rules under `dashboards/`:
//!
//! - every dashboard is JSON in Grafana's classic model (schemaVersion ≥ 39, `__inputs` with
//!   `DS_PROMETHEUS`, `__requires`), panel ids are unique (rows' nested panels included), every
//!   data source is `${DS_PROMETHEUS}` or `${datasource}`, the template variables are the ones
//!   the queries use, data links lead to the connection dashboard with `var-vpn_id`, and the
//!   `message_kind` values the queries match are documented kinds;
//! - every metric name in a dashboard query, a variable query, a rule expression or a rule
//!   test's input series is on the real `/metrics` of a `tunnelwatch demo` started here (rule
//!   expressions may also use the rules' own recorded names, and `up`);
//! - `promtool check rules`, `promtool test rules` and `promtool check config` pass, and every
//!   dashboard query parses as PromQL (`promtool check rules` on a generated file);
//! - the dashboards validate against the JSON Schema of `@grafana/schema`'s `Dashboard` type
//!   (`dashboards/schema/check.sh`: ts-json-schema-generator + ajv-cli, pinned by npm).
//!
//! promtool (Debian `prometheus`) and node with `npm ci --prefix dashboards/schema`: when they
//! are missing the tests that need them print a notice and pass, unless `CI=true`, where they
//! fail (`.ci/run` installs them).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{http, missing, promtool_available, start_demo, terminate};

const CONNECTION_UID: &str = "tunnelwatch-connection";
const DATASOURCES: [&str; 2] = ["${DS_PROMETHEUS}", "${datasource}"];
const RULES: &str = "dashboards/prometheus/tunnelwatch-rules.yml";
const RULE_TESTS: &str = "dashboards/prometheus/tunnelwatch-rules.test.yml";
const PROMETHEUS_CONFIG: &str = "dashboards/prometheus/prometheus.yml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `dashboards/grafana/*.json`, by file name.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = root().join("dashboards/grafana");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards/grafana") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
        out.insert(name, value);
    }
    for want in [
        "fleet-overview.json",
        "connection.json",
        "concentrator.json",
    ] {
        assert!(
            out.contains_key(want),
            "dashboards/grafana/{want} is missing"
        );
    }
    out
}

/// The panels of a dashboard, rows' nested panels included, depth first.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression of a dashboard with where it is: panel targets and the selectors of
/// `label_values(…)` variable queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| {
                panic!("panel {:?}: a target without expr", p["title"].as_str())
            });
            out.push((
                format!("panel {:?}", p["title"].as_str().unwrap()),
                expr.to_owned(),
            ));
        }
    }
    for v in variables(dashboard) {
        if v["type"] == "query" {
            let name = v["name"].as_str().unwrap();
            let (selector, _label) = label_values(variable_query(v))
                .unwrap_or_else(|| panic!("variable {name}: not a label_values(…) query"));
            out.push((format!("variable {name}"), selector.to_owned()));
        }
    }
    out
}

fn variables(dashboard: &Value) -> &Vec<Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
}

fn variable_query(v: &Value) -> &str {
    v["query"]
        .as_str()
        .or_else(|| v["query"]["query"].as_str())
        .unwrap_or_else(|| panic!("variable {}: no query", v["name"]))
}

/// `label_values(SELECTOR, LABEL)` → (SELECTOR, LABEL).
fn label_values(q: &str) -> Option<(&str, &str)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim(), label.trim()))
}

/// Every value of a `"datasource"` key, anywhere in the document.
fn datasource_refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "datasource" {
                    out.push((at.clone(), x));
                }
                datasource_refs(x, format!("{at}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                datasource_refs(x, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every string in the document.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|x| strings(x, out)),
        Value::Object(map) => map.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Grafana variables referenced in a string: `$name`, `${name}`, `${name:fmt}`, `${a.b.c}`.
fn grafana_vars(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'{') {
                if let Some(end) = s[i + 2..].find('}') {
                    let inner = &s[i + 2..i + 2 + end];
                    out.push(inner.split(':').next().unwrap().to_owned());
                    i += end + 3;
                    continue;
                }
            } else {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j > start {
                    out.push(s[start..j].to_owned());
                    i = j;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Grafana's own variables the dashboards may use.
const GRAFANA_BUILTINS: [&str; 8] = [
    "__all",
    "__rate_interval",
    "__interval",
    "__range",
    "__url_time_range",
    "__field.labels.vpn_id",
    "__data.fields.vpn_id",
    "__value.raw",
];

/// The message kinds documented in docs/message-kinds.md (the backticked first column of its
/// tables and the severity table's lists).
fn documented_kinds() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/message-kinds.md")).unwrap();
    let mut kinds = BTreeSet::new();
    for line in text.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split('|').collect();
        let first = cells.get(1).copied().unwrap_or("");
        let second = cells.get(2).copied().unwrap_or("");
        for cell in [first, second] {
            for part in cell.split('`').skip(1).step_by(2) {
                if !part.is_empty()
                    && part
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                {
                    kinds.insert(part.to_owned());
                }
            }
        }
    }
    assert!(kinds.contains("dpd_timeout") && kinds.contains("route_denied"));
    kinds
}

/// The values a PromQL expression matches `message_kind` against (`=` or `=~` with `|`
/// alternatives of plain names).
fn message_kinds_matched(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("message_kind") {
        rest = &rest[i + "message_kind".len()..];
        let r = rest.trim_start();
        let r = r
            .strip_prefix("=~")
            .or_else(|| r.strip_prefix('='))
            .map(str::trim_start);
        if let Some(r) = r.and_then(|r| r.strip_prefix('"')) {
            let value = &r[..r.find('"').unwrap()];
            out.extend(value.split('|').map(str::to_owned));
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed() {
    let all = dashboards();
    let kinds = documented_kinds();
    let mut uids = BTreeSet::new();
    for (name, d) in &all {
        let ctx = |what: &str| format!("{name}: {what}");
        // Classic JSON model, import envelope.
        let sv = d["schemaVersion"].as_u64().expect("schemaVersion");
        assert!(sv >= 39, "{}", ctx("schemaVersion < 39"));
        let uid = d["uid"].as_str().expect("uid");
        assert!(uids.insert(uid.to_owned()), "{}", ctx("uid used twice"));
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
        let inputs = d["__inputs"].as_array().expect("__inputs");
        assert!(
            inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
                && i["type"] == "datasource"
                && i["pluginId"] == "prometheus"),
            "{}",
            ctx("no DS_PROMETHEUS datasource input")
        );
        let requires = d["__requires"].as_array().expect("__requires");
        let required =
            |ty: &str, id: &str| requires.iter().any(|r| r["type"] == ty && r["id"] == id);
        assert!(required("grafana", "grafana") && required("datasource", "prometheus"));

        // Panels: unique ids, rows included; every panel type listed in __requires.
        let ps = panels(d);
        assert!(ps.len() >= 5, "{}", ctx("too few panels"));
        let mut ids = BTreeSet::new();
        for p in &ps {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}", ctx("a panel without a numeric id")));
            assert!(
                ids.insert(id),
                "{}",
                ctx(&format!("panel id {id} used twice"))
            );
            let ty = p["type"].as_str().unwrap();
            assert!(
                ty == "row" || required("panel", ty),
                "{}",
                ctx(&format!("panel type {ty} not in __requires"))
            );
            let pos = &p["gridPos"];
            let (x, w) = (pos["x"].as_u64().unwrap(), pos["w"].as_u64().unwrap());
            assert!(
                x + w <= 24,
                "{}",
                ctx(&format!("panel {id} wider than the grid"))
            );
            if ty != "row" && ty != "text" {
                assert!(
                    p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                    "{}",
                    ctx(&format!("panel {id} has no query"))
                );
                assert!(
                    p.get("datasource").is_some(),
                    "{}",
                    ctx(&format!("panel {id} has no datasource"))
                );
            }
            if ty == "row" && p["collapsed"] == false {
                assert_eq!(
                    p["panels"],
                    serde_json::json!([]),
                    "{}",
                    ctx("an open row holds panels")
                );
            }
        }

        // Data sources: only the import input or the datasource variable.
        let mut refs = Vec::new();
        datasource_refs(d, String::new(), &mut refs);
        assert!(!refs.is_empty());
        for (at, r) in refs {
            let uid = r["uid"].as_str().or_else(|| r.as_str()).unwrap_or_default();
            assert!(
                DATASOURCES.contains(&uid),
                "{}",
                ctx(&format!(
                    "{at}: datasource {r} is neither ${{DS_PROMETHEUS}} nor ${{datasource}}"
                ))
            );
            if r.is_object() {
                assert_eq!(r["type"], "prometheus", "{}", ctx(&at));
            }
        }

        // Variables: a datasource variable (for provisioning), vpn_id and tunnel_ip from
        // label_values on our metrics; every variable a string refers to exists.
        let vars = variables(d);
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{}", ctx("no datasource variable")));
        assert_eq!(ds["type"], "datasource");
        assert_eq!(ds["query"], "prometheus");
        assert_eq!(
            ds["current"]["value"],
            "${DS_PROMETHEUS}",
            "{}",
            ctx("imports set the variable")
        );
        for want in ["vpn_id", "tunnel_ip"] {
            let v = vars
                .iter()
                .find(|v| v["name"] == want)
                .unwrap_or_else(|| panic!("{}", ctx(&format!("no {want} variable"))));
            let (selector, label) = label_values(variable_query(v)).unwrap();
            assert_eq!(label, want, "{}", ctx(want));
            assert!(selector.starts_with("tunnelwatch_"), "{}", ctx(want));
        }
        let defined: BTreeSet<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
        let mut all_strings = Vec::new();
        strings(d, &mut all_strings);
        for s in all_strings {
            for var in grafana_vars(s) {
                assert!(
                    var == "DS_PROMETHEUS"
                        || defined.contains(var.as_str())
                        || GRAFANA_BUILTINS.contains(&var.as_str()),
                    "{}",
                    ctx(&format!("{s:?} uses ${var}, which is not defined"))
                );
            }
        }

        // Documented message kinds only.
        for (at, expr) in dashboard_exprs(d) {
            for k in message_kinds_matched(&expr) {
                assert!(
                    kinds.contains(&k),
                    "{}",
                    ctx(&format!("{at}: message_kind {k:?} is not documented"))
                );
            }
        }
    }

    // Links into the connection dashboard carry the connection.
    let mut links = 0;
    for (name, d) in &all {
        let mut all_strings = Vec::new();
        strings(d, &mut all_strings);
        for s in all_strings
            .iter()
            .filter(|s| s.contains(&format!("/d/{CONNECTION_UID}/")))
        {
            assert!(
                s.contains("var-vpn_id=${__"),
                "{name}: link without the connection: {s}"
            );
            links += 1;
        }
    }
    assert!(links >= 4, "only {links} links to the connection dashboard");
    assert!(
        all.values().any(|d| d["uid"] == CONNECTION_UID),
        "no dashboard has uid {CONNECTION_UID}"
    );

    // Provisioning: the data source at Prometheus' address and a file provider.
    let prov = root().join("dashboards/grafana/provisioning");
    let ds = std::fs::read_to_string(prov.join("datasources/tunnelwatch.yaml")).unwrap();
    for want in [
        "type: prometheus",
        "url: http://127.0.0.1:9090",
        "uid: ",
        "isDefault: true",
    ] {
        assert!(
            ds.contains(want),
            "datasources/tunnelwatch.yaml lacks {want:?}"
        );
    }
    let dp = std::fs::read_to_string(prov.join("dashboards/tunnelwatch.yaml")).unwrap();
    for want in ["type: file", "path: "] {
        assert!(
            dp.contains(want),
            "dashboards/tunnelwatch.yaml lacks {want:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Metric names in PromQL

/// PromQL functions (Prometheus 2.x and 3.x).
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "info",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
    // only after `@`
    "start",
    "end",
];
/// Aggregation operators (may be followed by `by (…)` / `without (…)` before their argument).
const AGGREGATIONS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "limit_ratio",
    "limitk",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];
/// Keywords; those in `LABEL_LISTS` take a parenthesised list of label names.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects. Skips string literals, label matchers `{…}`,
/// ranges and subqueries `[…]`, numbers and durations, Grafana variables, label lists of
/// `by`/`on`/… and function and operator names. An identifier followed by `(` that is not a
/// PromQL function is an error (a typo would otherwise pass as a metric).
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Index just past the bracket matching c[start] (`{`/`[`/`(`), strings skipped.
    let close = |start: usize| -> Result<usize, String> {
        let (open, shut) = match c[start] {
            '{' => ('{', '}'),
            '[' => ('[', ']'),
            _ => ('(', ')'),
        };
        let mut depth = 0;
        let mut j = start;
        while j < c.len() {
            match c[j] {
                '"' | '\'' | '`' => j = skip_string(&c, j)?,
                ch if ch == open => {
                    depth += 1;
                    j += 1;
                }
                ch if ch == shut => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        return Ok(j);
                    }
                }
                _ => j += 1,
            }
        }
        Err(format!("unbalanced {open} in {expr:?}"))
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '"' || ch == '\'' || ch == '`' {
            i = skip_string(&c, i)?;
        } else if ch == '{' || ch == '[' {
            i = close(i)?;
        } else if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '$' {
            // A Grafana variable: ${…} or $name.
            i += 1;
            if i < c.len() && c[i] == '{' {
                while i < c.len() && c[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // A number (1, 0.5, 1e6, 0x1f) or a duration (5m, 1h30m).
            while i < c.len() {
                let x = c[i];
                let exp_sign = (x == '+' || x == '-') && matches!(c[i - 1], 'e' | 'E');
                if x.is_ascii_alphanumeric() || x == '.' || x == '_' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            let ident: String = c[start..i].iter().collect();
            let mut j = i;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            let paren = j < c.len() && c[j] == '(';
            let lower = ident.to_ascii_lowercase();
            if LABEL_LISTS.contains(&ident.as_str()) {
                if paren {
                    i = close(j)?;
                }
            } else if KEYWORDS.contains(&lower.as_str()) || AGGREGATIONS.contains(&ident.as_str()) {
            } else if paren {
                if !FUNCTIONS.contains(&ident.as_str()) {
                    return Err(format!("{ident}(…) is not a PromQL function, in {expr:?}"));
                }
            } else {
                names.insert(ident);
            }
        } else {
            i += 1;
        }
    }
    Ok(names)
}

/// Index just past the string literal starting at c[i].
fn skip_string(c: &[char], i: usize) -> Result<usize, String> {
    let quote = c[i];
    let mut j = i + 1;
    while j < c.len() {
        if c[j] == '\\' && quote != '`' {
            j += 2;
        } else if c[j] == quote {
            return Ok(j + 1);
        } else {
            j += 1;
        }
    }
    Err("unterminated string".to_owned())
}

#[test]
fn metric_name_extraction() {
    let names = |e: &str| metric_names(e).unwrap().into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum by (vpn_id) (rate(a_total{x="}y{", z=~"$vpn_id"}[$__rate_interval])) / on (vpn_id) group_left (concentrator_id) b offset 5m > bool 1e6"#
        ),
        ["a_total", "b"]
    );
    assert_eq!(
        names(
            r#"topk(10, sum by (message_kind) (increase(tunnelwatch_events_total{message_kind=~"a|b"}[$__range])))"#
        ),
        ["tunnelwatch_events_total"]
    );
    assert_eq!(
        names("count_over_time((x > 0 < 1)[24h:1m]) > 60 or vector(0)"),
        ["x"]
    );
    assert_eq!(
        names(
            "8 * (rate(in_total[5m]) + rate(out_total[5m])) and on (vpn_id) c unless d offset 15m and on (job, instance) up offset 15m == 1"
        ),
        ["c", "d", "in_total", "out_total", "up"]
    );
    assert_eq!(
        names(r#"label_replace(m, "dst", "$1", "src", "(.*)")"#),
        ["m"]
    );
    assert_eq!(
        names("sum without (job) (rec:rule:sum) + 0.5 + .5 + 0x1f + 1.5e-3"),
        ["rec:rule:sum"]
    );
    assert!(metric_names("sum(rat(x[5m]))").is_err());
    assert_eq!(
        label_values(r#"label_values(tunnelwatch_tunnel_state{vpn_id=~"$vpn_id"}, tunnel_ip)"#),
        Some((
            r#"tunnelwatch_tunnel_state{vpn_id=~"$vpn_id"}"#,
            "tunnel_ip"
        ))
    );
    assert_eq!(
        grafana_vars("a $x ${y} ${z:csv} ${__field.labels.vpn_id} $"),
        ["x", "y", "z", "__field.labels.vpn_id"]
    );
    assert_eq!(
        message_kinds_matched(r#"x{message_kind=~"a|b", k="v"} + y{message_kind="c"}"#),
        ["a", "b", "c"]
    );
}

/// What a rules file holds: the PromQL of every `expr:` (with the line it starts on), the
/// names it records, and each alert's block of text.
struct Rules {
    exprs: Vec<(usize, String)>,
    recorded: BTreeSet<String>,
    alerts: Vec<(String, String)>,
}

/// Reads the parts of a Prometheus rules file that the checks need. Not a YAML parser: it
/// knows `key: value` lines (quoted or not) and `|` / `>` block scalars, which is how the
/// rules file is written; promtool checks that the file as a whole is what Prometheus reads.
fn read_rules(text: &str) -> Rules {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Rules {
        exprs: Vec::new(),
        recorded: BTreeSet::new(),
        alerts: Vec::new(),
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let item = line.trim_start().trim_start_matches("- ");
        if let Some(v) = item.strip_prefix("record:") {
            rules.recorded.insert(unquote(v.trim()).to_owned());
        }
        if let Some(v) = item.strip_prefix("alert:") {
            let end = (i + 1..lines.len())
                .find(|&j| {
                    let t = lines[j].trim_start();
                    t.starts_with("- alert:")
                        || t.starts_with("- record:")
                        || t.starts_with("- name:")
                })
                .unwrap_or(lines.len());
            rules
                .alerts
                .push((unquote(v.trim()).to_owned(), lines[i..end].join("\n")));
        }
        if let Some(v) = item.strip_prefix("expr:") {
            let v = v.trim();
            if v.starts_with('|') || v.starts_with('>') {
                let mut body = Vec::new();
                let mut j = i + 1;
                while j < lines.len()
                    && (lines[j].trim().is_empty()
                        || lines[j].len() - lines[j].trim_start().len() > indent)
                {
                    body.push(lines[j].trim());
                    j += 1;
                }
                rules.exprs.push((i + 1, body.join("\n")));
                i = j;
                continue;
            }
            rules.exprs.push((i + 1, unquote(v).to_owned()));
        }
        i += 1;
    }
    rules
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v)
}

/// The metric names of the `series:` of a promtool test file.
fn test_series_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- series:")
                .or_else(|| l.trim().strip_prefix("series:"))
        })
        .map(|v| {
            let v = unquote(v.trim());
            v.split('{').next().unwrap().trim().to_owned()
        })
        .collect()
}

/// Sample names on an OpenMetrics/Prometheus text page, and the names its `# TYPE` lines
/// declare (a counter `x` is sampled as `x_total`, a histogram as `x_bucket`/`_sum`/`_count`).
fn exposed_names(page: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut sampled = BTreeSet::new();
    let mut declared = BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(ty)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match ty {
                "counter" => &["_total", "_created"],
                "histogram" | "gaugehistogram" => {
                    &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"]
                }
                "summary" => &["", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            for s in suffixes {
                declared.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            sampled.insert(line[..end].to_owned());
        }
    }
    (sampled, declared)
}

#[test]
fn metric_names_exist_on_live_metrics() {
    // The names each file uses, with where.
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, d) in dashboards() {
        for (at, expr) in dashboard_exprs(&d) {
            for m in metric_names(&expr).unwrap_or_else(|e| panic!("{name} {at}: {e}")) {
                assert!(
                    !m.contains(':'),
                    "{name} {at}: uses the recorded name {m}; dashboards must work without the rules"
                );
                wanted.entry(m).or_default().insert(format!("{name} {at}"));
            }
        }
    }
    let rules_text = std::fs::read_to_string(root().join(RULES)).unwrap();
    let rules = read_rules(&rules_text);
    assert!(
        rules.exprs.len() >= 10,
        "read only {} expressions from {RULES}",
        rules.exprs.len()
    );
    for (line, expr) in &rules.exprs {
        for m in metric_names(expr).unwrap_or_else(|e| panic!("{RULES}:{line}: {e}")) {
            if rules.recorded.contains(&m) {
                continue;
            }
            assert!(
                !m.contains(':'),
                "{RULES}:{line}: {m} is recorded by no rule"
            );
            // `up` is Prometheus' own series for the scrape of tunnelwatch.
            if m != "up" {
                wanted
                    .entry(m)
                    .or_default()
                    .insert(format!("{RULES}:{line}"));
            }
        }
    }
    let tests_text = std::fs::read_to_string(root().join(RULE_TESTS)).unwrap();
    for m in test_series_names(&tests_text) {
        if m != "up" {
            wanted.entry(m).or_default().insert(RULE_TESTS.to_owned());
        }
    }
    assert!(
        wanted.len() >= 15,
        "only {} metric names found: {:?}",
        wanted.len(),
        wanted.keys()
    );

    // A live demo's /metrics, until every name has samples (bounded).
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_demo(data.path(), &[]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let (mut sampled, mut declared);
    loop {
        let (status, page) = http(&addr, "GET", "/metrics", "");
        assert_eq!(status, 200);
        (sampled, declared) = exposed_names(&page);
        if wanted.keys().all(|m| sampled.contains(m)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    terminate(&mut child);
    let absent: Vec<String> = wanted
        .iter()
        .filter(|(m, _)| !sampled.contains(*m))
        .map(|(m, at)| {
            let note = if declared.contains(m) {
                "declared by # TYPE but no sample yet".to_owned()
            } else if declared.contains(&format!("{m}_total")) {
                format!("a counter: its samples are {m}_total")
            } else {
                "not on /metrics".to_owned()
            };
            format!(
                "{m} ({note}; used in {})",
                at.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        absent.is_empty(),
        "after {:?}, metric names used but not exported by tunnelwatch:\n{}",
        started.elapsed(),
        absent.join("\n")
    );
    eprintln!(
        "{} metric names, all on /metrics after {:.1} s",
        wanted.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// promtool

fn promtool(args: &[&str]) -> Output {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    if promtool_available().is_none() {
        return;
    }
    let out = promtool(&["check", "rules", RULES]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    let out = promtool(&["test", "rules", RULE_TESTS]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    promtool(&["check", "config", PROMETHEUS_CONFIG]);

    // Every alert: for, keep_firing_for, a severity, summary/description/link annotations;
    // those about a connection name it and link to its status page.
    let rules = read_rules(&std::fs::read_to_string(root().join(RULES)).unwrap());
    assert!(rules.alerts.len() >= 7);
    for (name, block) in &rules.alerts {
        for key in [
            "for:",
            "keep_firing_for:",
            "severity:",
            "summary:",
            "description:",
            "link:",
        ] {
            assert!(block.contains(key), "alert {name} has no {key}");
        }
        if block.contains("/connections/{{ $labels.vpn_id }}") {
            let summary = block
                .lines()
                .find(|l| l.trim_start().starts_with("summary:"))
                .unwrap();
            assert!(
                summary.contains("{{ $labels.vpn_id }}"),
                "alert {name}: the summary does not name the connection"
            );
        }
    }
    for want in [
        "TunnelwatchTunnelDown",
        "TunnelwatchConnectionDown",
        "TunnelwatchSingleTunnel",
        "TunnelwatchBgpFlapping",
        "TunnelwatchBgpPrefixLimitNear",
        "TunnelwatchSourceSilent",
        "TunnelwatchRejectsRising",
    ] {
        assert!(
            rules.alerts.iter().any(|(n, _)| n == want),
            "no alert {want}"
        );
    }
}

#[test]
fn dashboard_queries_parse_as_promql() {
    if promtool_available().is_none() {
        return;
    }
    // Each query (Grafana variables replaced by values of the right kind) as a recording rule.
    let mut file = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    let mut index = Vec::new();
    for (name, d) in dashboards() {
        for (at, expr) in dashboard_exprs(&d) {
            let promql = expr
                .replace("$__rate_interval", "2m")
                .replace("$__interval", "1m")
                .replace("$__range", "6h");
            let mut promql_vars = promql.clone();
            for var in grafana_vars(&promql) {
                promql_vars = promql_vars
                    .replace(&format!("${{{var}}}"), "x")
                    .replace(&format!("${var}"), "x");
            }
            file.push_str(&format!(
                "      - record: dashboard_query_{}\n        expr: |\n",
                index.len()
            ));
            for l in promql_vars.lines() {
                file.push_str(&format!("          {l}\n"));
            }
            index.push(format!("{name} {at}: {expr}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "a dashboard query is not valid PromQL:\n{}{}\nqueries (dashboard_query_N = line N):\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        index.join("\n")
    );
    assert!(index.len() >= 30, "only {} dashboard queries", index.len());
}

// ---------------------------------------------------------------------------------------
// Grafana's dashboard schema

#[test]
fn dashboards_validate_against_grafana_schema() {
    let schema_dir = root().join("dashboards/schema");
    if Command::new("node").arg("--version").output().is_err() {
        missing("node is not installed (Debian packages nodejs and npm)");
        return;
    }
    if !Path::new(&schema_dir.join("node_modules/.bin/ajv")).exists() {
        missing("the schema tools are not installed: run npm ci --prefix dashboards/schema");
        return;
    }
    let started = Instant::now();
    let out = Command::new("sh")
        .arg(schema_dir.join("check.sh"))
        .current_dir(root())
        .output()
        .expect("run dashboards/schema/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dashboards/schema/check.sh failed:\n{stdout}\n{stderr}"
    );
    for name in dashboards().keys() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("valid: ") && l.ends_with(name.as_str())),
            "{name} was not validated:\n{stdout}"
        );
    }
    eprintln!("schema check: {:.1} s", started.elapsed().as_secs_f64());
}
