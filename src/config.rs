//! `tunnelwatch.toml`: what `serve` runs — the data directory, the HTTP listen address,
//! retention, the pipeline's in-flight budget, the sources (`[sources.NAME]`, `type = "…"`, as in
//! Vector), the connection inventory (`[[connections]]`) and the alarms (`[[alarms]]`, plus the
//! alarms of a `preset` shipped in the repository's `presets/` and built into the binary).
//!
//! Every error names the file and the line (and column) it comes from: TOML syntax and unknown
//! or mistyped fields from the TOML parser's spans, source build errors (a bad address, a missing
//! certificate) from the span of their `[sources.NAME]` table. Relative paths are taken relative
//! to the working directory, as on the command line.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tunnelwatch_exporters::notify::{Notifier, NotifierConfig};
use tunnelwatch_ingest::sources::{Source, SourceConfig};
use tunnelwatch_monitor::alarm::AlarmDefinition;
use tunnelwatch_monitor::{MonitorConfig, Routing};

/// The alarm presets `preset = "NAME"` can name: (name, the preset file's text).
const PRESETS: [(&str, &str); 1] = [("aws-vpn", include_str!("../presets/aws-vpn.toml"))];

/// A preset file: alarms only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetFile {
    #[serde(default)]
    alarms: Vec<AlarmDefinition>,
}

/// The names of the built-in presets, comma-separated (for error messages).
pub fn preset_names() -> String {
    PRESETS.map(|(n, _)| n).join(", ")
}

/// The alarms of preset `name`, or `None` if there is no such preset.
pub fn preset_alarms(name: &str) -> Option<Vec<AlarmDefinition>> {
    let (_, text) = PRESETS.iter().find(|(n, _)| *n == name)?;
    let file: PresetFile = toml::from_str(text).expect("the built-in presets parse (tested)");
    Some(file.alarms)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory (default `./tunnelwatch-data`).
    #[serde(default = "default_data")]
    pub data: PathBuf,
    /// HTTP server: status page, `/api/query`, `/metrics`, `/healthz`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Delete day partitions older than this many days (default: keep everything).
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub sources: BTreeMap<String, toml::Spanned<SourceConfig>>,
    #[serde(default)]
    pub connections: Vec<toml::Spanned<Connection>>,
    /// Alarms to switch on from a built-in preset (`"aws-vpn"`: the AWS example alarms).
    #[serde(default)]
    pub preset: Option<String>,
    /// Alarm definitions (CloudWatch semantics; see docs/alarms.md).
    #[serde(default)]
    pub alarms: Vec<toml::Spanned<AlarmDefinition>>,
    /// Where alarm notifications go (`[notifiers.NAME] type = "file" | "command"`).
    #[serde(default)]
    pub notifiers: BTreeMap<String, toml::Spanned<NotifierConfig>>,
    /// Health notifications (`[health] notify = ["NAME", …]`).
    #[serde(default)]
    pub health: Option<toml::Spanned<HealthConfig>>,
    /// The HTTP server's API protection and limits (`[http]`).
    #[serde(default)]
    pub http: Option<toml::Spanned<HttpConfig>>,
}

/// `[http]`: bearer token for `/api`, whether `/metrics` needs it too, request limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Bearer token every `/api` route requires (`Authorization: Bearer …`); none: open.
    #[serde(default)]
    pub token: Option<String>,
    /// Name of an environment variable holding the token (instead of `token`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Whether `/metrics` requires the token too (default: open, as Prometheus scrapes it).
    #[serde(default)]
    pub protect_metrics: bool,
    /// Largest request body (default "1MiB").
    #[serde(default)]
    pub max_body: Option<String>,
    /// Longest request (default "60s"); a query past it is cancelled with 504.
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// Serve HTTPS: `tls = { cert_file = "…", key_file = "…" }` (PEM; optional
    /// `client_ca_file` for mutual TLS).
    #[serde(default)]
    pub tls: Option<tunnelwatch_ingest::tls::TlsConfig>,
}

/// `[health]`: which notifiers get Health events (in AWS Health's EventBridge shape).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Bytes received by sources and not yet durable, at most (e.g. "64MiB"). When it is used
    /// up, TCP and file sources stop reading, HTTP answers 503 and UDP drops (counted).
    #[serde(default = "default_budget")]
    pub in_flight_budget: String,
    /// `always` (fsync every append; what a source acknowledged survives a power loss) or
    /// `never` (leave it to the OS).
    #[serde(default = "default_sync")]
    pub sync: String,
    /// Memory the store's unflushed rows may take before it flushes them to Parquet (e.g.
    /// "256MiB"); without it, a flush every 512 Ki rows (~500 MiB of decoded rows).
    #[serde(default)]
    pub store_memory: Option<String>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            in_flight_budget: default_budget(),
            sync: default_sync(),
            store_memory: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub vpn_id: String,
    /// `static` or `bgp`.
    pub routing: RoutingName,
    #[serde(default)]
    pub concentrator_id: Option<String>,
    /// The connection's tunnels, for placing customer-gateway lines on them by the address they
    /// name (`gateway_events.vpn_id`/`tunnel_ip`).
    #[serde(default)]
    pub tunnels: Vec<TunnelAddresses>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelAddresses {
    /// The tunnel's AWS outside IP (what the gateway's IKE daemon peers with).
    pub outside_ip: std::net::IpAddr,
    /// The tunnel's inside CIDR (`169.254.10.0/30`: what its BGP daemon peers in).
    #[serde(default)]
    pub inside_cidr: Option<String>,
}

/// The inside CIDR's network address, when it is an IPv4 /30.
fn inside_network(cidr: &str) -> Option<std::net::Ipv4Addr> {
    let (addr, len) = cidr.split_once('/')?;
    (len == "30").then_some(())?;
    addr.parse().ok()
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutingName {
    Static,
    Bgp,
}

fn default_data() -> PathBuf {
    PathBuf::from("./tunnelwatch-data")
}
fn default_listen() -> String {
    "127.0.0.1:9977".into()
}
fn default_budget() -> String {
    "64MiB".into()
}
fn default_sync() -> String {
    "always".into()
}

/// A config error with its place in the file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A config that was read and whose sources were built.
pub struct Loaded {
    pub config: Config,
    pub listen: SocketAddr,
    pub budget_bytes: usize,
    pub sync: tunnelwatch_queries::Sync,
    /// `[pipeline] store_memory`, in bytes.
    pub store_memory: Option<usize>,
    pub sources: Vec<(String, Box<dyn Source>)>,
    pub monitor: MonitorConfig,
    /// The preset's alarms, then the file's own, validated.
    pub alarms: Vec<AlarmDefinition>,
    pub notifiers: BTreeMap<String, Box<dyn Notifier>>,
    /// The notifiers Health events go to.
    pub health_notify: Vec<String>,
    pub http: crate::http::Settings,
    /// The inventory's tunnels by address, for gateway lines (empty: none listed).
    pub gateway_peers: tunnelwatch_parsers::gateway::PeerMap,
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// Reads, validates and builds everything `serve` needs; collects every error it can find.
pub fn load(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    load_for(path, Needs::Sources)
}

#[cfg(test)]
pub fn parse(path: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    parse_for(path, text, Needs::Sources)
}

/// What a command needs of a config file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `serve`: at least one source.
    Sources,
    /// `alarms test`: the alarms; sources are checked if present but may be absent.
    Alarms,
}

/// Like [`load`], for a command with other needs.
pub fn load_for(path: &Path, needs: Needs) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_for(path, &text, needs)
}

pub fn parse_for(path: &Path, text: &str, needs: Needs) -> Result<Loaded, Vec<ConfigError>> {
    let at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    let config: Config = toml::from_str(text).map_err(|e| {
        // The parser's message repeats the offending line; the first line says what is wrong.
        let message = e.message().trim().to_owned();
        vec![at(e.span(), message)]
    })?;
    let mut errors = Vec::new();
    // Spans of top-level keys, for errors about their values.
    let key_span = |key: &str| -> Option<std::ops::Range<usize>> {
        text.lines()
            .scan(0usize, |off, l| {
                let start = *off;
                *off += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| {
                let t = l.trim_start();
                t.starts_with(key) && t[key.len()..].trim_start().starts_with('=')
            })
            .map(|(s, l)| s..s + l.len())
    };
    let listen = match config.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(at(
                key_span("listen"),
                format!("listen: `{}` is not an address (IP:PORT)", config.listen),
            ));
            None
        }
    };
    let budget_bytes = match parse_bytes(&config.pipeline.in_flight_budget) {
        Ok(b) if b >= 64 << 10 => Some(b),
        Ok(_) => {
            errors.push(at(
                key_span("in_flight_budget"),
                "pipeline.in_flight_budget: at least 64KiB".into(),
            ));
            None
        }
        Err(e) => {
            errors.push(at(
                key_span("in_flight_budget"),
                format!("pipeline.in_flight_budget: {e}"),
            ));
            None
        }
    };
    let store_memory = match config.pipeline.store_memory.as_deref().map(parse_bytes) {
        None => None,
        Some(Ok(b)) if b >= 1 << 20 => Some(b),
        Some(Ok(_)) => {
            errors.push(at(
                key_span("store_memory"),
                "pipeline.store_memory: at least 1MiB".into(),
            ));
            None
        }
        Some(Err(e)) => {
            errors.push(at(
                key_span("store_memory"),
                format!("pipeline.store_memory: {e}"),
            ));
            None
        }
    };
    let sync = match config.pipeline.sync.as_str() {
        "always" => Some(tunnelwatch_queries::Sync::Always),
        "never" => Some(tunnelwatch_queries::Sync::Never),
        other => {
            errors.push(at(
                key_span("sync"),
                format!("pipeline.sync: `{other}`: expected always or never"),
            ));
            None
        }
    };
    if config.sources.is_empty() && needs == Needs::Sources {
        errors.push(at(
            None,
            "no sources: add at least one [sources.NAME] table (see tunnelwatch.example.toml)"
                .into(),
        ));
    }
    let mut sources = Vec::new();
    for (name, spanned) in &config.sources {
        match spanned.get_ref().build(name) {
            Ok(s) => sources.push((name.clone(), s)),
            Err(e) => errors.push(at(Some(spanned.span()), e.to_string())),
        }
    }
    let mut inventory = HashMap::new();
    let mut concentrators = HashMap::new();
    let mut gateway_peers = tunnelwatch_parsers::gateway::PeerMap::default();
    for c in &config.connections {
        let conn = c.get_ref();
        if !conn.vpn_id.starts_with("vpn-") {
            errors.push(at(
                Some(c.span()),
                format!(
                    "connections: vpn_id `{}` does not look like vpn-…",
                    conn.vpn_id
                ),
            ));
        }
        let routing = match conn.routing {
            RoutingName::Static => Routing::Static,
            RoutingName::Bgp => Routing::Bgp,
        };
        if inventory.insert(conn.vpn_id.clone(), routing).is_some() {
            errors.push(at(
                Some(c.span()),
                format!("connections: {} is listed twice", conn.vpn_id),
            ));
        }
        if let Some(id) = &conn.concentrator_id {
            concentrators.insert(conn.vpn_id.clone(), Arc::<str>::from(id.as_str()));
        }
        for t in &conn.tunnels {
            let inside = match t.inside_cidr.as_deref() {
                Some(cidr) => match inside_network(cidr) {
                    Some(n) => Some(n),
                    None => {
                        errors.push(at(
                            Some(c.span()),
                            format!(
                                "connections: {}: inside_cidr `{cidr}` is not an IPv4 /30",
                                conn.vpn_id
                            ),
                        ));
                        None
                    }
                },
                None => None,
            };
            gateway_peers.add(&conn.vpn_id, t.outside_ip, inside);
        }
    }
    let mut alarms = Vec::new();
    if let Some(name) = &config.preset {
        match preset_alarms(name) {
            Some(preset) => alarms.extend(preset),
            None => errors.push(at(
                key_span("preset"),
                format!(
                    "preset: `{name}` is not a preset (known: {})",
                    preset_names()
                ),
            )),
        }
    }
    for a in &config.alarms {
        let def = a.get_ref();
        if let Err(e) = def.validate() {
            errors.push(at(Some(a.span()), format!("alarms: {e}")));
        } else if alarms.iter().any(|d: &AlarmDefinition| d.name == def.name) {
            errors.push(at(
                Some(a.span()),
                format!(
                    "alarms: `{}` is defined twice (a preset's alarm names are taken)",
                    def.name
                ),
            ));
        }
        for name in def
            .actions
            .alarm
            .iter()
            .chain(&def.actions.ok)
            .chain(&def.actions.insufficient_data)
        {
            if !config.notifiers.contains_key(name) {
                errors.push(at(
                    Some(a.span()),
                    format!(
                        "alarms: `{}` names notifier `{name}`, which is not defined (add [notifiers.{name}])",
                        def.name
                    ),
                ));
            }
        }
        alarms.push(def.clone());
    }
    let health_notify = config
        .health
        .as_ref()
        .map(|h| h.get_ref().notify.clone())
        .unwrap_or_default();
    for name in &health_notify {
        if !config.notifiers.contains_key(name) {
            errors.push(at(
                config.health.as_ref().map(|h| h.span()),
                format!(
                    "health: notify names notifier `{name}`, which is not defined (add [notifiers.{name}])"
                ),
            ));
        }
    }
    let http = match &config.http {
        None => Ok(crate::http::Settings::default()),
        Some(h) => http_settings(h.get_ref()).map_err(|e| at(Some(h.span()), format!("http: {e}"))),
    }
    .map_err(|e| errors.push(e))
    .ok();
    let mut notifiers = BTreeMap::new();
    for (name, spanned) in &config.notifiers {
        match spanned.get_ref().build(name) {
            Ok(n) => {
                notifiers.insert(name.clone(), n);
            }
            Err(e) => errors.push(at(Some(spanned.span()), e.to_string())),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Loaded {
        gateway_peers,
        alarms,
        notifiers,
        health_notify,
        http: http.expect("checked"),
        listen: listen.expect("checked"),
        budget_bytes: budget_bytes.expect("checked"),
        sync: sync.expect("checked"),
        store_memory,
        sources,
        monitor: MonitorConfig {
            inventory,
            concentrators,
            ..MonitorConfig::default()
        },
        config,
    })
}

/// The `[http]` table as settings: the token resolved, the limits parsed.
fn http_settings(h: &HttpConfig) -> Result<crate::http::Settings, String> {
    let defaults = crate::http::Settings::default();
    let token = match (&h.token, &h.token_env) {
        (Some(_), Some(_)) => return Err("token and token_env: give one of them".into()),
        (Some(t), None) => Some(t.clone()),
        (None, Some(var)) => Some(
            std::env::var(var)
                .map_err(|_| format!("token_env: the environment variable {var} is not set"))?,
        ),
        (None, None) => None,
    };
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err("token: use at least 16 characters".into());
    }
    if h.protect_metrics && token.is_none() {
        return Err("protect_metrics needs a token (token or token_env)".into());
    }
    let max_body_bytes = match &h.max_body {
        Some(s) => parse_bytes(s).map_err(|e| format!("max_body: {e}"))?,
        None => defaults.max_body_bytes,
    };
    let request_timeout = match &h.request_timeout {
        Some(s) => tunnelwatch_ingest::sources::parse_duration(s)
            .map_err(|e| format!("request_timeout: {e}"))?,
        None => defaults.request_timeout,
    };
    let tls = h
        .tls
        .as_ref()
        .map(tunnelwatch_ingest::tls::server_config)
        .transpose()?;
    Ok(crate::http::Settings {
        token,
        protect_metrics: h.protect_metrics,
        max_body_bytes,
        request_timeout,
        tls,
    })
}

/// Parses `64MiB`, `512KiB`, `1GiB`, `100MB`, or a plain byte count.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 64MiB)"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(Path::new("t.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = errors("data = \"x\"\n\n[sources.a]\ntype = \"stdin\"\nfromat = \"json\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("t.toml:3:"), "{e:?}");
        assert!(e[0].contains("fromat"), "{e:?}");
        let e = errors("listen = \"nowhere\"\n[sources.a]\ntype = \"stdin\"\n");
        assert_eq!(
            e,
            ["t.toml:1:1: listen: `nowhere` is not an address (IP:PORT)"]
        );
        let e = errors("[sources.a]\ntype = \"stdin\"\n\n[sources.b]\ntype = \"nope\"\n");
        assert!(
            e[0].starts_with("t.toml:4:") || e[0].starts_with("t.toml:5:"),
            "{e:?}"
        );
        let e = errors("[sources.a]\ntype = \"stdin\"\nformat = \"yaml\"\n");
        assert!(
            e[0].starts_with("t.toml:1:") && e[0].contains("unknown format `yaml`"),
            "{e:?}"
        );
        let e = errors("x = [\n");
        assert!(e[0].starts_with("t.toml:"), "{e:?}");
        let e = errors("");
        assert!(e[0].contains("no sources"), "{e:?}");
    }

    #[test]
    fn presets_parse_and_validate() {
        for (name, _) in PRESETS {
            let alarms = preset_alarms(name).unwrap();
            assert!(!alarms.is_empty(), "{name}");
            for a in &alarms {
                a.validate()
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", a.name));
            }
            tunnelwatch_monitor::alarm::AlarmEvaluator::new(alarms).unwrap();
        }
        assert_eq!(preset_alarms("aws-vpn").unwrap().len(), 5);
        assert!(preset_alarms("nope").is_none());
    }

    #[test]
    fn inventory_tunnels_place_gateway_addresses() {
        let text = "[sources.a]\ntype = \"vici\"\nsocket = \"/run/charon.vici\"\n[[connections]]\nvpn_id = \"vpn-1\"\nrouting = \"bgp\"\ntunnels = [\n  { outside_ip = \"192.0.2.10\", inside_cidr = \"169.254.10.0/30\" },\n  { outside_ip = \"192.0.2.11\" },\n]\n";
        let l = match parse(Path::new("t.toml"), text) {
            Ok(l) => l,
            Err(e) => panic!("{}", e[0]),
        };
        let at = |ip: &str| {
            l.gateway_peers
                .tunnel_of_ip(ip)
                .map(|t| t.tunnel_ip.to_string())
        };
        assert_eq!(at("192.0.2.11").as_deref(), Some("192.0.2.11"));
        assert_eq!(at("169.254.10.1").as_deref(), Some("192.0.2.10"));
        assert_eq!(at("169.254.10.5"), None);
        let e = errors(&text.replace("169.254.10.0/30", "169.254.10.0/29"));
        assert!(
            e[0].contains("inside_cidr `169.254.10.0/29` is not an IPv4 /30"),
            "{e:?}"
        );
        let e = errors(&text.replace("/run/charon.vici", "tcp://x"));
        assert!(e[0].contains("not a UNIX socket path"), "{e:?}");
    }

    #[test]
    fn inventory_and_budget() {
        let l = match parse(
            Path::new("t.toml"),
            "[pipeline]\nin_flight_budget = \"1MiB\"\n[sources.a]\ntype = \"stdin\"\n[[connections]]\nvpn_id = \"vpn-1\"\nrouting = \"static\"\nconcentrator_id = \"vcn-1\"\n",
        ) {
            Ok(l) => l,
            Err(e) => panic!("{}", e[0]),
        };
        assert_eq!(l.budget_bytes, 1 << 20);
        assert_eq!(l.monitor.inventory["vpn-1"], Routing::Static);
        assert_eq!(&*l.monitor.concentrators["vpn-1"], "vcn-1");
        let e = errors(
            "[sources.a]\ntype = \"stdin\"\n[[connections]]\nvpn_id = \"vpn-1\"\nrouting = \"ospf\"\n",
        );
        assert!(e[0].starts_with("t.toml:5:"), "{e:?}");
    }
}
