//! Test helpers: the real all-in-one app on port 0 with a fresh data dir.

use std::future::Future;
use std::time::Duration;

use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::{Config, StopHandle};
use serde_json::Value;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    /// The admin listener (`/metrics`, health).
    pub admin: String,
    pub ctx: gridwork_platform::Context,
    pub demo: gridwork::seed::Demo,
    pub stop: StopHandle,
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
    pub http: reqwest::Client,
    /// Every route the API listener serves, with who may call it (ADR 0033).
    pub table: Vec<gridwork_platform::routes::Route>,
}

pub fn config(data_dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: data_dir.to_path_buf(), ..Default::default() };
    c.http.listen = "127.0.0.1:0".into();
    c.http.workers = 2;
    c.resolve().unwrap()
}

pub async fn spawn(data_dir: &std::path::Path) -> TestApp {
    spawn_with(config(data_dir)).await
}

pub async fn spawn_with(config: Config) -> TestApp {
    gridwork_platform::telemetry::init("text");
    let up = gridwork::build(config).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", up.app.port());
    let admin = format!("http://127.0.0.1:{}", up.app.admin_port());
    let stop = up.app.stop_handle();
    let done = tokio::spawn(up.app.run_until_stopped());
    TestApp { base, admin, ctx: up.ctx, demo: up.demo, stop, done, http: reqwest::Client::new(), table: up.table }
}

impl TestApp {
    pub fn token(&self, user: &str, role: Role, scope: &str) -> String {
        self.ctx.issuer.issue(&Actor { id: user.into(), role, scope: scope.into(), channel: None }).unwrap().0
    }

    pub fn worker(&self) -> String {
        self.token("worker-1", Role::GridWorker, &self.demo.demo_grid)
    }

    pub fn dispatcher(&self) -> String {
        self.token("dispatcher-1", Role::Dispatcher, &self.demo.demo_centre)
    }

    pub fn analyst(&self) -> String {
        self.token("analyst-1", Role::Analyst, "371000")
    }

    /// The admin listener's `/metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.admin)).send().await.unwrap().text().await.unwrap()
    }

    pub fn admin(&self) -> String {
        self.token("admin", Role::Admin, "")
    }

    /// A token of `role` with the demo's usual scope for it: the demo grid
    /// for a grid worker, the demo centre for its dispatchers and mediators,
    /// the province's city for an analyst, everything for an admin.
    pub fn as_role(&self, role: Role) -> String {
        match role {
            Role::GridWorker => self.worker(),
            Role::Dispatcher => self.dispatcher(),
            Role::Analyst => self.analyst(),
            Role::Admin => self.admin(),
            Role::Mediator => self.token("mediator-1", Role::Mediator, &self.demo.demo_centre),
        }
    }

    /// The case of report `report_id`, as the dispatcher sees it in the
    /// queue, once the pipeline has opened it (or linked the report to it).
    pub async fn case_of(&self, report_id: &str) -> Value {
        let d = self.dispatcher();
        eventually("the case of the report", || async {
            let (_, l) = self.get(&d, "/v1/cases?limit=200&sort=created").await;
            l["items"].as_array()?.iter().find(|c| c["report_id"] == report_id).cloned()
        })
        .await
    }

    /// Submits `report` as the demo grid worker (201) and waits for the
    /// case it opens, as the dispatcher sees it in the queue.
    pub async fn submit_and_wait_for_case(&self, report: &Value) -> Value {
        let (s, r) = self.post(&self.worker(), "/v1/reports", report).await;
        assert_eq!(s, 201, "{r}");
        self.case_of(report["id"].as_str().unwrap()).await
    }

    /// `POST /v1/cases/{case}/{action}` with `body`.
    pub async fn act(&self, token: &str, case: &str, action: &str, body: Value) -> (u16, Value) {
        self.post(token, &format!("/v1/cases/{case}/{action}"), &body).await
    }

    /// [`TestApp::act`], which must succeed: the case after the action.
    pub async fn act_ok(&self, token: &str, case: &str, action: &str, body: Value) -> Value {
        let (s, v) = self.act(token, case, action, body).await;
        assert_eq!(s, 200, "{action} on {case}: {v}");
        v
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, token: &str, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn shutdown(self) {
        self.stop.stop().await;
        self.done.await.unwrap().unwrap();
    }
}

/// Polls `f` until it yields `Some`, for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn report(id: &str, lat: f64, lon: f64, category: &str) -> Value {
    serde_json::json!({
        "id": id,
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "location": {"lat": lat, "lon": lon, "accuracy_m": 8.0},
        "address": "威海市环翠区",
        "category": category,
        "description": "楼上装修噪音扰民，多次协商未果",
        "parties": [{"name": "张三", "phone": "13800000000"}]
    })
}

/// Where a test's app keeps its state.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// The embedded default: SQLite, the in-process cache and event log.
    Embedded,
    /// PostgreSQL (a database of its own) and Redis (a key prefix of its own).
    PostgresAndRedis,
}

/// Runs `scenario` against a fresh app on `backend`, then shuts it down and
/// removes what it made.
pub async fn on(backend: Backend, scenario: impl AsyncFnOnce(&TestApp)) {
    on_with(backend, |_| {}, scenario).await
}

/// [`on`] with the configuration changed by `tweak` first.
pub async fn on_with(backend: Backend, tweak: impl FnOnce(&mut Config), scenario: impl AsyncFnOnce(&TestApp)) {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, pg) = match backend {
        Backend::Embedded => (config(dir.path()), None),
        Backend::PostgresAndRedis => {
            let (cfg, pg) = on_postgres_and_redis(dir.path()).await;
            (cfg, Some(pg))
        }
    };
    tweak(&mut cfg);
    let app = spawn_with(cfg).await;
    scenario(&app).await;
    app.shutdown().await;
    drop(pg);
}

/// One scenario, two tests: `name::embedded` and `name::postgres_and_redis`
/// run `scenario(&TestApp)` on each backend ([`on`]).
macro_rules! on_both_backends {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[actix_web::test]
            async fn embedded() {
                $crate::helpers::on($crate::helpers::Backend::Embedded, super::$scenario).await;
            }

            #[actix_web::test]
            async fn postgres_and_redis() {
                $crate::helpers::on($crate::helpers::Backend::PostgresAndRedis, super::$scenario).await;
            }
        }
    };
}

/// A configuration with state in a PostgreSQL database of its own and the
/// cache in Redis under a key prefix of its own.
pub async fn on_postgres_and_redis(data_dir: &std::path::Path) -> (Config, PgDatabase) {
    let pg = PgDatabase::create().await;
    let mut cfg = config(data_dir);
    cfg.database.url = pg.url.clone();
    cfg.cache.url = redis_url();
    cfg.cache.key_prefix = format!("gridwork-test:{}:", Uuid::new_v4());
    (cfg, pg)
}

/// A PostgreSQL database of its own on the machine's server, dropped at the end.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

/// The PostgreSQL server the tests use: `GW_TEST_POSTGRES` (a server
/// URL without a database; scripts/test.sh sets it when it starts a
/// throwaway server), else the machine's on 127.0.0.1:5432.
pub fn pg_server() -> String {
    std::env::var("GW_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

/// The Redis the tests use: `GW_TEST_REDIS`, else 127.0.0.1:6379.
pub fn redis_url() -> String {
    std::env::var("GW_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The server's maintenance database, for creating and dropping test databases.
pub fn pg_admin() -> String {
    format!("{}/test", pg_server())
}

impl PgDatabase {
    pub async fn create() -> Self {
        use sea_orm::ConnectionTrait;
        let name = format!("gw_test_{}", Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(pg_admin()).await.expect("PostgreSQL (GW_TEST_POSTGRES)");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        PgDatabase { url: format!("{}/{name}", pg_server()), name }
    }
}

/// Dropped also when a test fails (unwinding), so no database is left behind.
impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::process::Command::new("psql")
            .args([pg_admin().as_str(), "-qc", &sql])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// A Kafka-protocol broker of its own: tansu on a free loopback port with
/// in-memory storage, killed at the end.
pub struct Broker {
    pub addr: String,
    child: std::process::Child,
}

impl Broker {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let tansu = which_tansu();
        let child = std::process::Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{addr}"),
                "--advertised-listener-url",
                &format!("tcp://{addr}"),
            ])
            .env("STORAGE_ENGINE", "memory://tansu/")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {}: {e} (scripts/setup-test-deps.sh installs it)", tansu.display())
            });
        // Owned at once, so the broker is killed and reaped even if it never listens.
        let broker = Broker { addr: addr.clone(), child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tansu did not listen on {addr}");
    }

    pub fn url(&self) -> String {
        format!("kafka://{}", self.addr)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which_tansu() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin/tansu");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("tansu"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("tansu is not installed: run scripts/setup-test-deps.sh"))
}

/// The whole production shape in one process: PostgreSQL, Redis and Kafka,
/// each isolated for this test (database, key prefix, topic prefix).
pub struct RealBackends {
    pub broker: Broker,
    pub pg: PgDatabase,
    pub prefix: String,
}

impl RealBackends {
    pub async fn start() -> Self {
        RealBackends {
            broker: Broker::start(),
            pg: PgDatabase::create().await,
            prefix: format!("t{}.", Uuid::new_v4().simple()),
        }
    }

    pub fn apply(&self, cfg: &mut Config) {
        cfg.database.url = self.pg.url.clone();
        cfg.bus.url = self.broker.url();
        cfg.bus.topic_prefix = self.prefix.clone();
        cfg.bus.partitions = 2;
        cfg.cache.url = redis_url();
        cfg.cache.key_prefix = format!("gridwork-test:{}:", self.prefix);
    }

    /// The same settings as `GRIDWORK_…` variables, for child processes
    /// (listening on a free port).
    pub fn env(&self, data_dir: &std::path::Path) -> Vec<(String, String)> {
        vec![
            ("GRIDWORK_DATA_DIR".into(), data_dir.display().to_string()),
            ("GRIDWORK_HTTP__LISTEN".into(), "127.0.0.1:0".into()),
            ("GRIDWORK_DATABASE__URL".into(), self.pg.url.clone()),
            ("GRIDWORK_BUS__URL".into(), self.broker.url()),
            ("GRIDWORK_BUS__TOPIC_PREFIX".into(), self.prefix.clone()),
            ("GRIDWORK_BUS__PARTITIONS".into(), "2".into()),
            ("GRIDWORK_CACHE__URL".into(), redis_url()),
            ("GRIDWORK_CACHE__KEY_PREFIX".into(), format!("gridwork-test:{}:", self.prefix)),
        ]
    }

    pub async fn stop(self) {
        drop(self.broker);
        drop(self.pg);
    }
}

/// A service binary (or `gridwork up`) running as its own process.
pub struct Svc {
    pub child: std::process::Child,
    pub base: String,
    /// The admin listener (`/metrics`, health).
    pub admin: String,
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a binary of this workspace (built beside `gridwork`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_BIN_EXE_gridwork")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is not built: run the tests through scripts/test.sh (cargo nextest run --workspace)",
        p.display()
    );
    p
}

/// Starts `name` with `args` and `env` and waits for the line that says
/// where it listens (`… listening on URL` or `gridwork is up: URL`).
pub fn start_process(name: &str, args: &[&str], env: &[(String, String)]) -> Svc {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(binary(name));
    cmd.args(args).env("RUST_LOG", "warn").stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The API's URL (`… listening on URL`, `gridwork is up: URL`) and the
    // admin listener's (a line naming `admin` and its URL).
    let (mut base, mut admin) = (None, None);
    while base.is_none() || admin.is_none() {
        let line = lines.next().unwrap_or_else(|| panic!("{name} exited before listening")).unwrap();
        if let Some((_, url)) = line.split_once(" listening on ").or_else(|| line.split_once("gridwork is up: ")) {
            base = Some(url.trim().to_owned());
        } else if line.contains("admin") {
            if let Some(at) = line.find("http://") {
                let url: String = line[at..].chars().take_while(|c| !c.is_whitespace()).collect();
                admin = Some(url.trim_end_matches("/metrics").to_owned());
            }
        }
    }
    let (base, admin) = (base.unwrap(), admin.unwrap());
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Svc { child, base, admin }
}

/// `gridwork migrate --demo` with `env`; returns the demo grid code.
pub fn migrate_demo(env: &[(String, String)]) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"));
    cmd.args(["migrate", "--demo"]).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("demo point in grid ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect()
}

/// A token from the issuer whose key lives in `data_dir`.
pub fn token_from(data_dir: &std::path::Path, id: &str, role: Role, scope: &str) -> String {
    let issuer = gridwork_platform::auth::Issuer::load_or_create(
        &data_dir.join("jwt-ed25519.key"),
        "gridwork",
        "gridwork",
        3600,
    )
    .unwrap();
    issuer.issue(&Actor { id: id.into(), role, scope: scope.into(), channel: None }).unwrap().0
}

/// GETs `url` until `ok` holds (30 s at most).
pub async fn poll_json(http: &reqwest::Client, url: &str, token: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut last = String::new();
    let started = std::time::Instant::now();
    for _ in 0..900 {
        match http.get(url).bearer_auth(token).send().await {
            Ok(r) => {
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if status == 200 && ok(&v) {
                    eprintln!("poll_json {url}: {:?}", started.elapsed());
                    return v;
                }
                last = format!("{status} {v}");
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting on {url}; last answer: {}", last.chars().take(2000).collect::<String>());
}

/// Claims, resolves (with `outcome`) and closes a case through the mediation
/// API at `base`, asserting each step succeeds.
pub async fn claim_resolve_close(http: &reqwest::Client, base: &str, token: &str, case_id: &str, outcome: &str) {
    for (action, body) in [
        ("claim", serde_json::json!({})),
        ("resolve", serde_json::json!({"outcome": outcome})),
        ("close", serde_json::json!({})),
    ] {
        let r = http
            .post(format!("{base}/v1/cases/{case_id}/{action}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A PostgreSQL server of the test's own — `initdb` in a temporary
/// directory, on a free loopback port — that the test may stop and start.
/// Fault tests never touch the shared server other tests use. Removed (and
/// stopped) when dropped.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql (Debian's postgresql package)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = OwnPostgres { dir, bin, port };
        // initdb refuses to run as root: then the server runs as `postgres`.
        if pg.as_root() {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres", &pg.dir.path().display().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let data = pg.data().display().to_string();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        pg.start_server();
        pg
    }

    fn as_root(&self) -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool).display().to_string();
        let mut cmd = if self.as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            std::process::Command::new(&exe)
        };
        cmd.args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        assert!(self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start"]), "pg_ctl start");
    }

    /// Like `pg_ctl stop -m immediate`: connections cut, no clean shutdown.
    pub fn stop_immediate(&self) {
        let data = self.data().display().to_string();
        assert!(self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]), "pg_ctl stop");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// Changes case `id` (`set`: SQL assignments, e.g. `centre = '371002'`) the
/// way a transfer or close on another replica does: inside a transaction
/// that holds the case's row lock while `during` runs, committed after it.
/// Asserts `during` waited for the lock; returns what it answered.
pub async fn locked_update<F: Future<Output = (u16, Value)> + Send + 'static>(
    app: &TestApp,
    id: &str,
    set: &str,
    during: F,
) -> (u16, Value) {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let txn = app.ctx.db.begin().await.unwrap();
    gridwork_mediation::repo::lock_case(&txn, id).await.unwrap();
    let backend = txn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!("UPDATE cases SET {set}, version = version + 1 WHERE id = $1"),
        _ => format!("UPDATE cases SET {set}, version = version + 1 WHERE id = ?"),
    };
    txn.execute(Statement::from_sql_and_values(backend, sql, [id.into()])).await.unwrap();
    let request = tokio::spawn(during);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!request.is_finished(), "the request waits for the row lock");
    txn.commit().await.unwrap();
    request.await.unwrap()
}
