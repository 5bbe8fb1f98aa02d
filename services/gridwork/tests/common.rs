//! Test helpers: the real all-in-one app on port 0 with a fresh data dir.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers: failing loudly is the point

use std::future::Future;
use std::time::Duration;

use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::{Config, StopHandle};
use serde_json::Value;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub ctx: gridwork_platform::Context,
    pub demo: gridwork::seed::Demo,
    pub stop: StopHandle,
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
    pub http: reqwest::Client,
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
    let stop = up.app.stop_handle();
    let done = tokio::spawn(up.app.run_until_stopped());
    TestApp { base, ctx: up.ctx, demo: up.demo, stop, done, http: reqwest::Client::new() }
}

impl TestApp {
    pub fn token(&self, user: &str, role: Role, scope: &str) -> String {
        self.ctx.issuer.issue(&Actor { id: user.into(), role, scope: scope.into() }).unwrap().0
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

/// A PostgreSQL database of its own on the machine's server, dropped at the end.
pub struct PgDatabase {
    pub url: String,
    name: String,
}

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PgDatabase {
    pub async fn create() -> Self {
        use sea_orm::ConnectionTrait;
        let name = format!("gw_test_{}", Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(PG_ADMIN).await.expect("PostgreSQL on 127.0.0.1:5432");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        PgDatabase { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), name }
    }

    pub async fn drop(self) {
        use sea_orm::ConnectionTrait;
        let admin = sea_orm::Database::connect(PG_ADMIN).await.unwrap();
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.unwrap();
        admin.close().await.unwrap();
    }
}
