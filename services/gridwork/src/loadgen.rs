//! Simulated phones: many concurrent grid workers posting reports to intake,
//! for a fixed time, with a summary of throughput and latency.

use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// intake's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// A grid worker's token.
    pub token: String,
    pub concurrency: usize,
    pub duration: Duration,
    /// Reports are placed around this point (WGS-84), within about 2 km.
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub sent: u64,
    pub created: u64,
    pub errors: u64,
    pub seconds: f64,
    pub reports_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the load and returns the summary. Every 201 is a report durably
/// stored (intake answers only after its commit).
pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(spec.concurrency).build()?;
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut workers = Vec::new();
    for w in 0..spec.concurrency {
        let client = client.clone();
        let spec = spec.clone();
        workers.push(tokio::spawn(async move {
            let mut lat_ms = Vec::new();
            let (mut created, mut errors) = (0u64, 0u64);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let jitter = ((w as f64 * 7919.0 + i as f64 * 104_729.0) % 1000.0) / 1000.0 - 0.5;
                let body = serde_json::json!({
                    "id": uuid::Uuid::new_v4(),
                    "occurred_at": chrono::Utc::now().to_rfc3339(),
                    "location": {"lat": spec.lat + jitter * 0.02, "lon": spec.lon - jitter * 0.02, "accuracy_m": 15.0},
                    "category": "environment.sanitation",
                    "description": "生活垃圾未及时清运",
                });
                let t = Instant::now();
                let ok = client
                    .post(format!("{}/v1/reports", spec.url))
                    .bearer_auth(&spec.token)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16() == 201)
                    .unwrap_or(false);
                lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if ok {
                    created += 1;
                } else {
                    errors += 1;
                }
            }
            (lat_ms, created, errors)
        }));
    }
    let mut all = Vec::new();
    let (mut created, mut errors) = (0, 0);
    for w in workers {
        let (l, c, e) = w.await?;
        all.extend(l);
        created += c;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok(LoadReport {
        sent: all.len() as u64,
        created,
        errors,
        seconds,
        reports_per_second: created as f64 / seconds,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(0.0),
    })
}
