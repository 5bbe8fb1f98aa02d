//! Configuration: defaults, then a TOML file, then `GRIDWORK_…` environment
//! variables (`GRIDWORK_DATABASE__URL=postgres://…`: sections are separated
//! by a double underscore). Validated once at start-up; an invalid setting
//! stops the process with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded default keeps its files (database, event log,
    /// keys). Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
    pub http: Http,
    pub database: Database,
    pub bus: Bus,
    pub cache: Cache,
    pub auth: Auth,
    pub intake: Intake,
    pub assigner: Assigner,
    pub mediation: Mediation,
    pub kpi: Kpi,
    pub petition: Petition,
    pub log: Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    /// The admin listener: `/metrics` and the health checks, for
    /// Prometheus and probes; the API listener does not serve `/metrics`.
    /// Empty: the host of `listen`, port 9090 (port 0 when `listen` has
    /// port 0). Keep it off the public network.
    pub admin_listen: String,
    /// Largest accepted JSON body, in bytes (larger bodies get 413).
    pub max_body_bytes: usize,
    /// Worker threads of the HTTP server (0 = one per core).
    pub workers: usize,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` is believed:
    /// a request from one of them is attributed to the last address that
    /// header names. Empty (the default): the connection's own address,
    /// whatever the headers say.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// `sqlite://PATH`, or `postgres://…`. Empty: `sqlite://DATA_DIR/gridwork.db`.
    pub url: String,
    pub pool_size: u32,
    /// How long a query waits for a pooled connection before it fails (a
    /// consumer then holds its message and tries again; ADR 0023).
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bus {
    /// `sqlite://PATH` (embedded, durable), `memory://` (embedded, volatile)
    /// or `kafka://HOST:PORT`. Empty: `sqlite://DATA_DIR/events.db`.
    pub url: String,
    /// Prepended to every topic name.
    pub topic_prefix: String,
    /// Partitions of topics created at start-up.
    pub partitions: i32,
    /// Retention of topics created at start-up (Kafka `retention.ms`;
    /// compacted topics keep the latest message per key for good).
    pub retention_ms: i64,
    /// Retention of the dead-letter topic: far longer than the others, so
    /// operators can inspect and replay what failed (`gridwork dlq`).
    pub dead_letter_retention_ms: i64,
    /// Kafka `min.insync.replicas` of topics created at start-up (at most
    /// the URL's `replication`); 0 leaves the cluster's default.
    pub min_insync_replicas: i32,
    /// The most messages a consumer handles in one transaction when they
    /// are already waiting (ADR 0037; each handler has its own, smaller or
    /// equal, limit); 1 handles every message on its own.
    pub max_batch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    /// `memory://` (in-process) or `redis://…`.
    pub url: String,
    pub key_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub issuer: String,
    pub audience: String,
    /// The embedded issuer's Ed25519 key (PKCS#8, base64); created on first
    /// start. Empty: `DATA_DIR/jwt-ed25519.key`.
    pub signing_key_file: String,
    pub token_ttl_secs: u64,
    /// Clock skew tolerated on exp/nbf, in seconds.
    pub leeway_secs: u64,
    /// Lifetime of refresh tokens in seconds; each is spent on use.
    pub refresh_ttl_secs: u64,
    /// An external identity provider's JWKS (`https://…`, `http://…` or
    /// `file://…`); empty: only gridwork's own tokens are accepted.
    pub external_jwks_url: String,
    /// The external provider's `iss` and the `aud` it issues for gridwork.
    pub external_issuer: String,
    pub external_audience: String,
    /// The one algorithm accepted from it: RS256, ES256 or EdDSA.
    pub external_algorithm: String,
    /// How often its JWKS is fetched again (keys rotate without downtime:
    /// a token with a new `kid` also triggers an early fetch).
    pub jwks_refresh_secs: u64,
    /// Password sign-in throttling (ADR 0025): failed sign-ins are counted
    /// per username and per client address in windows of this many seconds …
    pub signin_window_secs: u64,
    /// … and once a username has this many failures in a window, its
    /// sign-ins answer 429 (with `Retry-After`) until the window ends …
    pub signin_max_failures_per_user: u64,
    /// … as do every sign-in from an address with this many.
    pub signin_max_failures_per_address: u64,
    /// Password hashes (Argon2, about 19 MiB each) verified at once; more
    /// sign-ins wait for a turn.
    pub signin_concurrency: usize,
    /// How long a sign-in waits for a turn before answering 503 (ms).
    pub signin_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Intake {
    /// At most this many reports share one transaction (group commit);
    /// 0 turns group commit off (one transaction per report).
    pub batch_max: usize,
    /// How long the first report of a batch waits for company, in ms.
    pub batch_wait_ms: u64,
    /// Reports accepted per token per minute; 0 = unlimited. Counted in the
    /// cache: if the cache is down, reports are accepted. A batch counts once.
    pub rate_limit_per_minute: u64,
    /// The most reports one `POST /v1/reports/batch` may carry.
    pub batch_max_items: usize,
    /// Where photos and videos go: `file://DIR` (empty: `DATA_DIR/media`),
    /// `memory://`, or `s3://bucket/prefix` (a build with the `s3` feature).
    pub media_url: String,
    /// The largest photo (JPEG, PNG, WebP, HEIC) and video (MP4, MOV) accepted.
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
    /// Where a grid worker may place reports: `street` (the township/street
    /// above their grid, the default), `county` or `city`, with
    /// `assigner.tolerance_m` of GPS error at its edge.
    pub report_area: gridwork_domain::auth::ReportArea,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Assigner {
    /// A point outside every grid but this close to one goes to it (metres).
    pub tolerance_m: f64,
    /// How often the assigner looks for a new grid version (milliseconds).
    pub refresh_ms: u64,
    /// A new grid version must be stored at least this long before it
    /// becomes valid (milliseconds), so that every assigner has loaded it
    /// by then; the assigner also reloads at once for a report this much
    /// newer than its last look.
    pub version_lead_ms: u64,
    /// Grid versions kept in memory for reports that occurred earlier; a
    /// report older than the oldest kept version is assigned with it.
    pub max_epochs: usize,
    /// Raster cells per grid of the lookup index (speed against memory).
    pub cells_per_grid: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mediation {
    /// How long a claim (签收) holds a case before others may take it.
    pub lease_minutes: i64,
    /// A report within this distance (m) of an open case of the same
    /// category, in the same or a neighbouring grid, …
    pub link_distance_m: f64,
    /// … whose incident happened within this many minutes of the case's, is
    /// linked to that case instead of opening another.
    pub link_window_minutes: i64,
    /// Near-due supervision (督办) is raised when this share of a clock has
    /// run (0 < share < 1).
    pub near_due_share: f64,
    /// How often the supervision scheduler looks for near-due and overdue
    /// cases.
    pub supervise_interval_ms: u64,
    /// Holiday calendar (JSON, `data/holidays.json` format). Empty: the
    /// calendar shipped in the binary.
    pub holidays_file: String,
    /// How often an open live stream (`GET /v1/centres/{code}/stream`)
    /// checks its token again (revocation); it also ends when the token
    /// expires.
    pub stream_recheck_ms: u64,
    /// At most this many missed events are replayed to a stream resumed
    /// with `Last-Event-ID`; a client that missed more is told to reload
    /// (`event: reset`).
    pub stream_replay_max: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kpi {
    /// Observation window of first-contact resolution after the answer.
    pub fcr_window_days: i64,
    /// Public KPIs (`/v1/public/kpis`) suppress every count and rate that
    /// rests on fewer cases than this (small-cell suppression).
    pub public_min_cell: u64,
    /// How often the Prometheus gauges of the current month are refreshed.
    pub gauge_refresh_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Petition {
    /// File with the secret of the petitioner/matter keys (HMAC); created on
    /// first start. Empty: `DATA_DIR/petition-hmac.key`.
    pub key_file: String,
    /// Keyring that encrypts personal information at rest (parties' names,
    /// phones, ID numbers); created on first start, rotated with
    /// `gridwork pii rotate`. Empty: `DATA_DIR/pii-keyring.json`.
    pub keyring_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(".gridwork"),
            http: Http::default(),
            database: Database::default(),
            bus: Bus::default(),
            cache: Cache::default(),
            auth: Auth::default(),
            intake: Intake::default(),
            assigner: Assigner::default(),
            mediation: Mediation::default(),
            kpi: Kpi::default(),
            petition: Petition::default(),
            log: Log::default(),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:8080".into(),
            admin_listen: String::new(),
            max_body_bytes: 256 * 1024,
            workers: 0,
            trusted_proxies: Vec::new(),
        }
    }
}
impl Default for Database {
    fn default() -> Self {
        Database { url: String::new(), pool_size: 8, acquire_timeout_ms: 10_000 }
    }
}
impl Default for Bus {
    fn default() -> Self {
        Bus {
            url: String::new(),
            topic_prefix: String::new(),
            partitions: 4,
            retention_ms: 7 * 24 * 3600 * 1000,
            dead_letter_retention_ms: 365 * 24 * 3600 * 1000,
            min_insync_replicas: 0,
            max_batch: 64,
        }
    }
}
impl Default for Cache {
    fn default() -> Self {
        Cache { url: "memory://".into(), key_prefix: "gridwork:".into() }
    }
}
impl Default for Auth {
    fn default() -> Self {
        Auth {
            issuer: "gridwork".into(),
            audience: "gridwork".into(),
            signing_key_file: String::new(),
            token_ttl_secs: 12 * 3600,
            leeway_secs: 30,
            refresh_ttl_secs: 30 * 24 * 3600,
            external_jwks_url: String::new(),
            external_issuer: String::new(),
            external_audience: String::new(),
            external_algorithm: "RS256".into(),
            jwks_refresh_secs: 300,
            signin_window_secs: 900,
            signin_max_failures_per_user: 5,
            signin_max_failures_per_address: 50,
            signin_concurrency: 4,
            signin_wait_ms: 5_000,
        }
    }
}
impl Default for Intake {
    fn default() -> Self {
        Intake {
            batch_max: 256,
            batch_wait_ms: 2,
            rate_limit_per_minute: 600,
            batch_max_items: 100,
            media_url: String::new(),
            max_image_bytes: 10 * 1024 * 1024,
            max_video_bytes: 50 * 1024 * 1024,
            report_area: gridwork_domain::auth::ReportArea::Street,
        }
    }
}
impl Default for Assigner {
    fn default() -> Self {
        Assigner { tolerance_m: 200.0, refresh_ms: 5_000, version_lead_ms: 60_000, max_epochs: 8, cells_per_grid: 32.0 }
    }
}
impl Default for Mediation {
    fn default() -> Self {
        Mediation {
            lease_minutes: 30,
            link_distance_m: 150.0,
            link_window_minutes: 180,
            near_due_share: 0.8,
            supervise_interval_ms: 5000,
            holidays_file: String::new(),
            stream_recheck_ms: 15_000,
            stream_replay_max: 1000,
        }
    }
}
impl Default for Kpi {
    fn default() -> Self {
        Kpi { fcr_window_days: 30, public_min_cell: 5, gauge_refresh_ms: 60_000 }
    }
}
impl Default for Log {
    fn default() -> Self {
        Log { format: "text".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, reason: reason.into() }
}

impl Config {
    /// Defaults, then `file` (if given; it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(file, &[])
    }

    /// As [`Config::load`], then `overrides` (command-line flags: dotted key,
    /// value) on top of everything.
    pub fn load_with(file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Load(format!("config file {} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("GRIDWORK_").split("__").ignore(&["config"]));
        for (key, value) in overrides {
            fig = fig.merge(Serialized::default(key, value));
        }
        let cfg: Config = fig.extract().map_err(|e| ConfigError::Load(e.to_string()))?;
        cfg.resolve()
    }

    /// Fills derived defaults (paths under `data_dir`) and validates.
    pub fn resolve(mut self) -> Result<Config, ConfigError> {
        let dir = self.data_dir.display().to_string();
        if self.http.admin_listen.is_empty() {
            if let Ok(api) = self.http.listen.parse::<SocketAddr>() {
                let port = if api.port() == 0 { 0 } else { 9090 };
                self.http.admin_listen = SocketAddr::new(api.ip(), port).to_string();
            }
        }
        if self.database.url.is_empty() {
            self.database.url = format!("sqlite://{dir}/gridwork.db");
        }
        if self.bus.url.is_empty() {
            self.bus.url = format!("sqlite://{dir}/events.db");
        }
        if self.intake.media_url.is_empty() {
            self.intake.media_url = format!("file://{dir}/media");
        }
        if self.auth.signing_key_file.is_empty() {
            self.auth.signing_key_file = format!("{dir}/jwt-ed25519.key");
        }
        if self.petition.keyring_file.is_empty() {
            self.petition.keyring_file = format!("{dir}/pii-keyring.json");
        }
        if self.petition.key_file.is_empty() {
            self.petition.key_file = format!("{dir}/petition-hmac.key");
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.http
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| invalid("http.listen", format!("{:?} is not HOST:PORT ({e})", self.http.listen)))?;
        let admin = self.http.admin_listen.parse::<SocketAddr>().map_err(|e| {
            invalid("http.admin_listen", format!("{:?} is not HOST:PORT ({e})", self.http.admin_listen))
        })?;
        if admin.port() != 0 && self.http.listen.parse::<SocketAddr>().is_ok_and(|api| api.port() == admin.port()) {
            return Err(invalid("http.admin_listen", "must not be the port of http.listen"));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        let scheme = |u: &str| u.split("://").next().unwrap_or_default().to_owned();
        if !matches!(scheme(&self.database.url).as_str(), "sqlite" | "postgres" | "postgresql")
            && !self.database.url.starts_with("sqlite:")
        {
            return Err(invalid(
                "database.url",
                format!("{:?}: expected sqlite://PATH or postgres://…", self.database.url),
            ));
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1"));
        }
        if !(100..=600_000).contains(&self.database.acquire_timeout_ms) {
            return Err(invalid("database.acquire_timeout_ms", "must be between 100 and 600000"));
        }
        if !matches!(scheme(&self.bus.url).as_str(), "sqlite" | "memory" | "kafka") {
            return Err(invalid(
                "bus.url",
                format!("{:?}: expected sqlite://PATH, memory:// or kafka://HOST:PORT", self.bus.url),
            ));
        }
        if self.bus.retention_ms < 60_000 {
            return Err(invalid("bus.retention_ms", "must be at least 60000 (one minute)"));
        }
        if self.bus.dead_letter_retention_ms < self.bus.retention_ms {
            return Err(invalid(
                "bus.dead_letter_retention_ms",
                "must be at least bus.retention_ms: dead letters are kept longer than what they came from",
            ));
        }
        if !(0..=16).contains(&self.bus.min_insync_replicas) {
            return Err(invalid("bus.min_insync_replicas", "must be between 0 (the cluster's default) and 16"));
        }
        if !(1..=1000).contains(&self.bus.max_batch) {
            return Err(invalid("bus.max_batch", "must be between 1 (no batches) and 1000"));
        }
        if !(1..=1024).contains(&self.bus.partitions) {
            return Err(invalid("bus.partitions", "must be between 1 and 1024"));
        }
        if !matches!(scheme(&self.cache.url).as_str(), "memory" | "redis") {
            return Err(invalid("cache.url", format!("{:?}: expected memory:// or redis://…", self.cache.url)));
        }
        if self.auth.issuer.is_empty() || self.auth.audience.is_empty() {
            return Err(invalid("auth", "issuer and audience must not be empty"));
        }
        if !self.auth.external_jwks_url.is_empty() {
            let scheme = self.auth.external_jwks_url.split("://").next().unwrap_or_default();
            if !matches!(scheme, "https" | "http" | "file") || !self.auth.external_jwks_url.contains("://") {
                return Err(invalid("auth.external_jwks_url", "must be an https://, http:// or file:// URL"));
            }
            if self.auth.external_issuer.is_empty() || self.auth.external_audience.is_empty() {
                return Err(invalid(
                    "auth.external_issuer",
                    "auth.external_issuer and auth.external_audience are required with auth.external_jwks_url",
                ));
            }
            if crate::auth::pinned_algorithm(&self.auth.external_algorithm).is_none() {
                return Err(invalid("auth.external_algorithm", "must be RS256, ES256 or EdDSA"));
            }
            if self.auth.jwks_refresh_secs < 10 {
                return Err(invalid("auth.jwks_refresh_secs", "must be at least 10"));
            }
        }
        if !["file://", "memory://", "s3://"].iter().any(|p| self.intake.media_url.starts_with(p)) {
            return Err(invalid("intake.media_url", "must be file://DIR, memory:// or s3://BUCKET/PREFIX"));
        }
        if self.intake.max_image_bytes < 1024 || self.intake.max_video_bytes < 1024 {
            return Err(invalid("intake.max_image_bytes", "media limits must be at least 1024 bytes"));
        }
        if self.intake.batch_max_items == 0 || self.intake.batch_max_items > 1000 {
            return Err(invalid("intake.batch_max_items", "must be between 1 and 1000"));
        }
        if self.auth.refresh_ttl_secs < 60 {
            return Err(invalid("auth.refresh_ttl_secs", "must be at least 60"));
        }
        if self.auth.token_ttl_secs < 60 {
            return Err(invalid("auth.token_ttl_secs", "must be at least 60"));
        }
        if !(10..=86_400).contains(&self.auth.signin_window_secs) {
            return Err(invalid("auth.signin_window_secs", "must be between 10 and 86400"));
        }
        if !(1..=100_000).contains(&self.auth.signin_max_failures_per_user) {
            return Err(invalid("auth.signin_max_failures_per_user", "must be between 1 and 100000"));
        }
        if !(1..=1_000_000).contains(&self.auth.signin_max_failures_per_address) {
            return Err(invalid("auth.signin_max_failures_per_address", "must be between 1 and 1000000"));
        }
        if !(1..=256).contains(&self.auth.signin_concurrency) {
            return Err(invalid("auth.signin_concurrency", "must be between 1 and 256"));
        }
        if !(10..=60_000).contains(&self.auth.signin_wait_ms) {
            return Err(invalid("auth.signin_wait_ms", "must be between 10 and 60000"));
        }
        if let Some(bad) = self.http.trusted_proxies.iter().find(|p| p.parse::<std::net::IpAddr>().is_err()) {
            return Err(invalid("http.trusted_proxies", format!("{bad:?} is not an IP address")));
        }
        if self.intake.batch_max > 10_000 {
            return Err(invalid("intake.batch_max", "must be between 0 (no group commit) and 10000"));
        }
        if self.intake.batch_wait_ms > 1000 {
            return Err(invalid("intake.batch_wait_ms", "must be at most 1000"));
        }
        if !self.assigner.tolerance_m.is_finite() || !(0.0..=10_000.0).contains(&self.assigner.tolerance_m) {
            return Err(invalid("assigner.tolerance_m", "must be between 0 and 10000 metres"));
        }
        if self.assigner.refresh_ms < 10 || self.assigner.refresh_ms * 2 > self.assigner.version_lead_ms {
            return Err(invalid(
                "assigner.refresh_ms",
                "must be at least 10 and at most half of assigner.version_lead_ms",
            ));
        }
        if self.assigner.max_epochs < 1 {
            return Err(invalid("assigner.max_epochs", "must be at least 1"));
        }
        if !(1.0..=256.0).contains(&self.assigner.cells_per_grid) {
            return Err(invalid("assigner.cells_per_grid", "must be between 1 and 256"));
        }
        if self.mediation.lease_minutes < 1 {
            return Err(invalid("mediation.lease_minutes", "must be at least 1"));
        }
        if !(self.mediation.link_distance_m >= 0.0 && self.mediation.link_distance_m <= 10_000.0) {
            return Err(invalid("mediation.link_distance_m", "must be between 0 and 10000 (metres)"));
        }
        if self.mediation.link_window_minutes < 0 {
            return Err(invalid("mediation.link_window_minutes", "must not be negative"));
        }
        if !(self.mediation.near_due_share > 0.0 && self.mediation.near_due_share < 1.0) {
            return Err(invalid("mediation.near_due_share", "must be between 0 and 1, exclusive"));
        }
        if self.mediation.supervise_interval_ms < 10 {
            return Err(invalid("mediation.supervise_interval_ms", "must be at least 10"));
        }
        if self.mediation.stream_recheck_ms < 10 {
            return Err(invalid("mediation.stream_recheck_ms", "must be at least 10"));
        }
        if !(1..=10_000).contains(&self.mediation.stream_replay_max) {
            return Err(invalid("mediation.stream_replay_max", "must be between 1 and 10000"));
        }
        if self.kpi.fcr_window_days < 1 {
            return Err(invalid("kpi.fcr_window_days", "must be at least 1"));
        }
        if self.kpi.public_min_cell < 2 {
            return Err(invalid("kpi.public_min_cell", "must be at least 2: a cell of one case singles a person out"));
        }
        if self.kpi.gauge_refresh_ms < 100 {
            return Err(invalid("kpi.gauge_refresh_ms", "must be at least 100"));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be text or json"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layered_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gridwork.toml");
        std::fs::write(&file, "data_dir = \"/tmp/x\"\n[http]\nlisten = \"127.0.0.1:0\"\n[bus]\npartitions = 8\n")
            .unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        assert_eq!(cfg.http.listen, "127.0.0.1:0");
        assert_eq!(cfg.bus.partitions, 8);
        assert_eq!(cfg.database.url, "sqlite:///tmp/x/gridwork.db");
        assert_eq!(cfg.http.admin_listen, "127.0.0.1:0", "port 0 for the API: port 0 for admin");
        assert_eq!(Config::default().resolve().unwrap().http.admin_listen, "127.0.0.1:9090");
        let mut c = Config::default();
        c.http.admin_listen = "127.0.0.1:8080".into();
        assert!(c.resolve().unwrap_err().to_string().contains("http.admin_listen"));
        std::fs::write(&file, "[http]\nlisten = \"nonsense\"\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("http.listen"), "{err}");
        std::fs::write(&file, "[http]\nlistn = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("listn"), "unknown keys are refused: {err}");
        let mut c = Config::default();
        c.bus.url = "nats://x".into();
        assert!(c.resolve().unwrap_err().to_string().contains("bus.url"));
        assert!(Config::load(Some(Path::new("/no/such/file.toml"))).is_err());
        let mut c = Config::default();
        c.auth.signin_concurrency = 0;
        assert!(c.resolve().unwrap_err().to_string().contains("auth.signin_concurrency"));
        let mut c = Config::default();
        c.auth.signin_max_failures_per_user = 0;
        assert!(c.resolve().unwrap_err().to_string().contains("auth.signin_max_failures_per_user"));
        let mut c = Config::default();
        c.bus.max_batch = 0;
        assert!(c.resolve().unwrap_err().to_string().contains("bus.max_batch"));
        let mut c = Config::default();
        c.http.trusted_proxies = vec!["10.0.0.1".into(), "proxy.local".into()];
        assert!(c.resolve().unwrap_err().to_string().contains("http.trusted_proxies"));
    }
}
