//! A dispatcher's view of a load run: the live stream of a unit's queues
//! (`GET /v1/centres/{code}/stream`, server-sent events), read while the
//! phones post, to time each report from its 2xx to its case's `created`
//! event — the moment a dispatcher would see it in the queue.
//!
//! A report linked to an open case nearby opens no case of its own: it is
//! counted as not seen (run gridwork with a small
//! `mediation.link_distance_m` to time every report).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Where to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The base URL of a process serving mediation's stream.
    pub url: String,
    /// A dispatcher's token whose scope covers `code`.
    pub token: String,
    /// The unit whose queues to watch (a county code sees all its centres).
    pub code: String,
}

/// When each report was accepted and when its case appeared.
#[derive(Default)]
pub struct Times {
    /// Report id → when its 2xx arrived.
    accepted: Mutex<HashMap<String, Instant>>,
    /// Report id → when its case's `created` event arrived, and whether the
    /// case is an emergency.
    seen: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Times {
    pub fn accepted(&self, id: &str) {
        if let Ok(mut a) = self.accepted.lock() {
            a.entry(id.to_owned()).or_insert_with(Instant::now);
        }
    }

    fn seen(&self, report: &str, emergency: bool) {
        if let Ok(mut s) = self.seen.lock() {
            s.entry(report.to_owned()).or_insert((Instant::now(), emergency));
        }
    }

    /// How many accepted reports have been seen in the queue.
    pub fn matched(&self) -> (usize, usize) {
        let (Ok(a), Ok(s)) = (self.accepted.lock(), self.seen.lock()) else { return (0, 0) };
        (a.keys().filter(|id| s.contains_key(*id)).count(), a.len())
    }
}

/// Report → queue latency of a run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QueueLatency {
    /// Reports accepted (2xx) during the run.
    pub accepted: usize,
    /// Of those, seen as a new case in the stream.
    pub seen: usize,
    /// Accepted but never seen (linked to a case nearby, or lost from view
    /// when the stream reconnected).
    pub not_seen: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The same for emergency cases alone.
    pub emergencies: usize,
    pub emergency_p50_ms: f64,
    pub emergency_p99_ms: f64,
    pub emergency_max_ms: f64,
    /// Times the stream had to be opened again.
    pub reconnects: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A running watcher.
pub struct Watcher {
    pub times: Arc<Times>,
    reconnects: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Opens the stream and returns once it is connected (200), so that no
    /// case of the run is created before the watch begins.
    pub async fn start(spec: WatchSpec) -> anyhow::Result<Watcher> {
        let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).build()?;
        let url = format!("{}/v1/centres/{}/stream", spec.url.trim_end_matches('/'), spec.code);
        let first = open(&client, &url, &spec.token, None).await?;
        let times = Arc::new(Times::default());
        let reconnects = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (t, r) = (times.clone(), reconnects.clone());
        let task = tokio::spawn(async move {
            let mut resp = Some(first);
            let mut last_id: Option<String> = None;
            loop {
                if let Some(r) = resp.take() {
                    read(r, &t, &mut last_id).await;
                }
                // Dropped (or the token expired): resume after the last event.
                r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                match open(&client, &url, &spec.token, last_id.as_deref()).await {
                    Ok(again) => resp = Some(again),
                    Err(e) => tracing::warn!(error = %e, "watch: cannot reopen the stream"),
                }
            }
        });
        Ok(Watcher { times, reconnects, task })
    }

    /// Waits until every accepted report has been seen, or until `grace`
    /// passes without one more seen; then stops and summarises.
    pub async fn finish(self, grace: Duration) -> QueueLatency {
        let mut last = (Instant::now(), 0usize);
        loop {
            let (seen, accepted) = self.times.matched();
            if seen >= accepted {
                break;
            }
            if seen > last.1 {
                last = (Instant::now(), seen);
            } else if last.0.elapsed() >= grace {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.task.abort();
        summarise(&self.times, self.reconnects.load(std::sync::atomic::Ordering::Relaxed))
    }
}

async fn open(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    last: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut req = client.get(url).bearer_auth(token).header("Accept", "text/event-stream");
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await?;
    if resp.status() != 200 {
        anyhow::bail!("{url}: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    Ok(resp)
}

/// Reads server-sent events until the stream ends, noting each new case.
async fn read(mut resp: reqwest::Response, times: &Times, last_id: &mut Option<String>) {
    let mut buf: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        // Events end with a blank line.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut data = String::new();
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    *last_id = Some(id.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&data) else { continue };
            if v["kind"] == "created" {
                if let Some(report) = v["case"]["report_id"].as_str() {
                    times.seen(report, v["case"]["urgency"] == "emergency");
                }
            }
        }
    }
}

fn summarise(times: &Times, reconnects: u64) -> QueueLatency {
    let (Ok(accepted), Ok(seen)) = (times.accepted.lock(), times.seen.lock()) else {
        return QueueLatency::default();
    };
    let mut all = Vec::new();
    let mut emergency = Vec::new();
    for (id, at) in accepted.iter() {
        if let Some((when, em)) = seen.get(id) {
            // The event may be read before the 2xx is: the case is visible
            // no later than the phone's answer (0 ms).
            let ms = when.saturating_duration_since(*at).as_secs_f64() * 1000.0;
            all.push(ms);
            if *em {
                emergency.push(ms);
            }
        }
    }
    all.sort_by(f64::total_cmp);
    emergency.sort_by(f64::total_cmp);
    QueueLatency {
        accepted: accepted.len(),
        seen: all.len(),
        not_seen: accepted.len() - all.len(),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        max_ms: all.last().copied().unwrap_or(0.0),
        emergencies: emergency.len(),
        emergency_p50_ms: percentile(&emergency, 0.5),
        emergency_p99_ms: percentile(&emergency, 0.99),
        emergency_max_ms: emergency.last().copied().unwrap_or(0.0),
        reconnects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_from_the_answer_to_the_case_and_never_negative() {
        let t = Times::default();
        t.seen("early", false); // the event read before the 2xx
        t.accepted("early");
        t.accepted("a");
        t.accepted("b");
        t.seen("b", false);
        t.accepted("linked");
        std::thread::sleep(Duration::from_millis(20));
        t.seen("a", true);
        t.seen("not-ours", false);
        let q = summarise(&t, 0);
        assert_eq!((q.accepted, q.seen, q.not_seen, q.emergencies), (4, 3, 1, 1));
        // [0 (early, clamped), ~0 (b), ≥ 20 (a)]: the middle is near 0.
        assert!(q.p50_ms < 5.0, "{q:?}");
        assert!(q.max_ms >= 20.0 && q.emergency_max_ms == q.max_ms, "{q:?}");
    }
}
