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
    /// Every report id that got a 201, one per line.
    pub accepted_out: Option<std::path::PathBuf>,
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
            let mut ids = Vec::new();
            let (mut created, mut errors) = (0u64, 0u64);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let jitter = ((w as f64 * 7919.0 + i as f64 * 104_729.0) % 1000.0) / 1000.0 - 0.5;
                let id = uuid::Uuid::new_v4();
                let body = serde_json::json!({
                    "id": id,
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
                    ids.push(id);
                } else {
                    errors += 1;
                }
            }
            (lat_ms, created, errors, ids)
        }));
    }
    let mut all = Vec::new();
    let mut accepted = Vec::new();
    let (mut created, mut errors) = (0, 0);
    for w in workers {
        let (l, c, e, ids) = w.await?;
        all.extend(l);
        created += c;
        errors += e;
        accepted.extend(ids);
    }
    if let Some(p) = &spec.accepted_out {
        let text: String = accepted.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(p, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
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

// ---------------------------------------------------------------------------
// Open loop: a fixed arrival rate, whatever the service does (`--rate`).
// ---------------------------------------------------------------------------

/// An open-loop run: reports arrive at `rate` per second however slowly
/// intake answers, as phones in the field do; a realistic mix of single
/// reports, offline batches, replays and petitions; every request that
/// failed with a network error, a 5xx or a 429 is retried with the same ids
/// (a phone keeps its queue until it gets an answer).
#[derive(Debug, Clone)]
pub struct OpenSpec {
    pub url: String,
    /// One token per simulated phone (grid workers); operations go round
    /// robin over them.
    pub tokens: Vec<String>,
    /// New reports per second (a batch of n counts n).
    pub rate: f64,
    pub duration: Duration,
    pub lat: f64,
    pub lon: f64,
    /// Reports are scattered up to this many degrees around (lat, lon).
    pub spread: f64,
    /// Shares of operations (the rest are single new reports).
    pub batch_share: f64,
    pub batch_size: usize,
    pub replay_share: f64,
    pub petition_share: f64,
    /// Share of operations that are emergencies (应急: `urgency`
    /// `emergency`, category `emergency.accident`), on their own lane.
    pub emergency_share: f64,
    /// Watch a unit's live stream and time each report to its case.
    pub watch: Option<crate::watch::WatchSpec>,
    /// At most this many operations in flight (retrying included); an
    /// arrival beyond waits, and counts as late.
    pub max_in_flight: usize,
    /// A request is retried for at most this long before the phone gives up.
    pub retry_for: Duration,
    /// Every report id that got a 2xx, one per line.
    pub accepted_out: Option<std::path::PathBuf>,
    /// A progress line on stderr this often.
    pub progress_every: Duration,
    /// Closed loop: `max_in_flight` phones, each sending its next
    /// operation as soon as the last is answered, as fast as intake goes
    /// (`rate` is ignored).
    pub closed: bool,
}

/// What an open-loop run did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct OpenReport {
    pub mode: &'static str,
    pub target_rate: f64,
    pub seconds: f64,
    /// Operations started (singles, batches, replays, petitions).
    pub operations: u64,
    /// New reports sent (batch items included), each counted once.
    pub reports_sent: u64,
    /// Distinct report ids that got a 2xx (written to `accepted_out`).
    pub reports_accepted: u64,
    pub reports_per_second: f64,
    pub singles: u64,
    pub batches: u64,
    pub batch_items: u64,
    pub petitions: u64,
    pub emergencies: u64,
    pub replays: u64,
    /// Replays answered 200 with the report (as they must be).
    pub replays_ok: u64,
    /// Replays of an accepted report answered anything else (201 would mean
    /// the first was lost; 409 that the server forgot the body).
    pub replays_wrong: u64,
    /// Requests sent again after a network error, 5xx or 429.
    pub retries: u64,
    /// Reports a phone gave up on after `retry_for` (never got a 2xx).
    pub gave_up: u64,
    /// Reports refused for good (4xx other than 429).
    pub rejected: u64,
    /// Arrivals that waited because `max_in_flight` operations were running.
    pub late: u64,
    /// Latency of an operation until its final answer, retries included.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// With a watch: from each 2xx to the case in the dispatcher's stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<crate::watch::QueueLatency>,
    /// A few examples of what went wrong.
    pub examples: Vec<String>,
}

#[derive(Default)]
struct Stats {
    operations: std::sync::atomic::AtomicU64,
    reports_sent: std::sync::atomic::AtomicU64,
    accepted: std::sync::atomic::AtomicU64,
    singles: std::sync::atomic::AtomicU64,
    batches: std::sync::atomic::AtomicU64,
    emergencies: std::sync::atomic::AtomicU64,
    batch_items: std::sync::atomic::AtomicU64,
    petitions: std::sync::atomic::AtomicU64,
    replays: std::sync::atomic::AtomicU64,
    replays_ok: std::sync::atomic::AtomicU64,
    replays_wrong: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
    gave_up: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
    late: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicU64,
}

fn bump(a: &std::sync::atomic::AtomicU64, n: u64) {
    a.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

fn get(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(std::sync::atomic::Ordering::Relaxed)
}

/// State shared by every operation of a run.
struct Shared {
    spec: OpenSpec,
    client: reqwest::Client,
    stats: Stats,
    latencies: std::sync::Mutex<Vec<f64>>,
    examples: std::sync::Mutex<Vec<String>>,
    /// Recently accepted single reports (phone, body), for replays.
    replay_pool: std::sync::Mutex<Vec<(usize, serde_json::Value)>>,
    out: std::sync::Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    /// With a watch: when each report was accepted.
    times: Option<std::sync::Arc<crate::watch::Times>>,
}

impl Shared {
    fn example(&self, what: String) {
        if let Ok(mut e) = self.examples.lock() {
            if e.len() < 20 {
                e.push(what);
            }
        }
    }

    fn accepted(&self, id: &str) {
        use std::io::Write;
        bump(&self.stats.accepted, 1);
        if let Some(t) = &self.times {
            t.accepted(id);
        }
        if let Ok(mut out) = self.out.lock() {
            if let Some(w) = out.as_mut() {
                if let Err(e) = writeln!(w, "{id}") {
                    tracing::error!(error = %e, "cannot record an accepted id");
                }
            }
        }
    }

    fn flush(&self) {
        use std::io::Write;
        if let Ok(mut out) = self.out.lock() {
            if let Some(w) = out.as_mut() {
                let _ = w.flush();
            }
        }
    }
}

/// A tiny deterministic generator (xorshift64*): the mix is reproducible.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CATEGORIES: [&str; 5] = [
    "dispute.neighbourhood",
    "dispute.consumer",
    "order.public",
    "dispute.property_management",
    "environment.sanitation",
];

fn new_report(spec: &OpenSpec, mix: &mut Mix, petition: bool) -> serde_json::Value {
    new_report_of(spec, mix, petition, false)
}

fn new_report_of(spec: &OpenSpec, mix: &mut Mix, petition: bool, emergency: bool) -> serde_json::Value {
    let (dy, dx) = ((mix.unit() - 0.5) * spec.spread, (mix.unit() - 0.5) * spec.spread);
    let ago = chrono::Duration::seconds((mix.unit() * 72.0 * 3600.0) as i64);
    let mut body = serde_json::json!({
        "id": uuid::Uuid::new_v4(),
        "occurred_at": (chrono::Utc::now() - ago).to_rfc3339(),
        "location": {"lat": spec.lat + dy, "lon": spec.lon + dx, "accuracy_m": 12.0},
        "category": CATEGORIES[(mix.next() % CATEGORIES.len() as u64) as usize],
        "description": "楼道堆放杂物，影响通行",
        "device_time": chrono::Utc::now().to_rfc3339(),
    });
    if petition {
        body["category"] = serde_json::json!("petition.labour");
        body["description"] = serde_json::json!("工地拖欠农民工工资");
        body["parties"] = serde_json::json!([{"name": "王五", "phone": "13700000000"}]);
        body["matter"] = serde_json::json!(format!("拖欠工资 {}", mix.next() % 1000));
    }
    if emergency {
        body["category"] = serde_json::json!("emergency.accident");
        body["urgency"] = serde_json::json!("emergency");
        body["description"] = serde_json::json!("路口车辆相撞，有人受伤");
        body["occurred_at"] = serde_json::json!(chrono::Utc::now().to_rfc3339());
    }
    body
}

enum Answer {
    /// 2xx with the status.
    Done(u16, serde_json::Value),
    /// Refused for good.
    Refused(u16, String),
    /// Still failing after `retry_for`.
    GaveUp(String),
}

/// POSTs `body` to `path` until it gets an answer that is not a network
/// error, a 5xx or a 429, for at most `retry_for`; always the same body, so
/// the same ids.
async fn post_until_answered(sh: &Shared, token: &str, path: &str, body: &serde_json::Value) -> Answer {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let why = match sh.client.post(format!("{}{path}", sh.spec.url)).bearer_auth(token).json(body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                if (200..300).contains(&status) {
                    return Answer::Done(status, r.json().await.unwrap_or(serde_json::Value::Null));
                }
                let text = r.text().await.unwrap_or_default();
                if status < 500 && status != 429 {
                    return Answer::Refused(status, text.chars().take(300).collect());
                }
                format!("{status} {}", text.chars().take(200).collect::<String>())
            }
            Err(e) => format!("network: {e}"),
        };
        if started.elapsed() >= sh.spec.retry_for {
            return Answer::GaveUp(why);
        }
        bump(&sh.stats.retries, 1);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(4));
    }
}

async fn single(sh: &Shared, phone: usize, body: serde_json::Value) {
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    match post_until_answered(sh, &sh.spec.tokens[phone], "/v1/reports", &body).await {
        Answer::Done(_, _) => {
            sh.accepted(&id);
            if let Ok(mut pool) = sh.replay_pool.lock() {
                if pool.len() >= 1000 {
                    let i = (id.as_bytes().first().copied().unwrap_or(0) as usize * 3) % pool.len();
                    pool[i] = (phone, body);
                } else {
                    pool.push((phone, body));
                }
            }
        }
        Answer::Refused(s, t) => {
            bump(&sh.stats.rejected, 1);
            sh.example(format!("report {id} refused {s}: {t}"));
        }
        Answer::GaveUp(why) => {
            bump(&sh.stats.gave_up, 1);
            sh.example(format!("report {id} given up: {why}"));
        }
    }
}

async fn batch(sh: &Shared, phone: usize, mut items: Vec<serde_json::Value>) {
    let started = Instant::now();
    while !items.is_empty() {
        let body = serde_json::json!({ "reports": items });
        match post_until_answered(sh, &sh.spec.tokens[phone], "/v1/reports/batch", &body).await {
            Answer::Done(_, out) => {
                let results = out["results"].as_array().cloned().unwrap_or_default();
                let mut again = Vec::new();
                for (item, r) in items.into_iter().zip(results.iter()) {
                    let id = item["id"].as_str().unwrap_or_default().to_owned();
                    match r["result"].as_str() {
                        Some("accepted") => sh.accepted(&id),
                        Some("unavailable") => again.push(item),
                        other => {
                            bump(&sh.stats.rejected, 1);
                            sh.example(format!("batch item {id}: {other:?} {}", r["error"]));
                        }
                    }
                }
                items = again;
                if !items.is_empty() {
                    if started.elapsed() >= sh.spec.retry_for {
                        bump(&sh.stats.gave_up, items.len() as u64);
                        sh.example(format!("{} batch items given up: unavailable", items.len()));
                        return;
                    }
                    bump(&sh.stats.retries, 1);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            Answer::Refused(s, t) => {
                bump(&sh.stats.rejected, items.len() as u64);
                sh.example(format!("batch of {} refused {s}: {t}", items.len()));
                return;
            }
            Answer::GaveUp(why) => {
                bump(&sh.stats.gave_up, items.len() as u64);
                sh.example(format!("batch of {} given up: {why}", items.len()));
                return;
            }
        }
    }
}

async fn replay(sh: &Shared, phone: usize, body: serde_json::Value) {
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    match post_until_answered(sh, &sh.spec.tokens[phone], "/v1/reports", &body).await {
        Answer::Done(200, _) => bump(&sh.stats.replays_ok, 1),
        Answer::Done(s, _) => {
            bump(&sh.stats.replays_wrong, 1);
            sh.example(format!("replay of accepted report {id} answered {s}"));
        }
        Answer::Refused(s, t) => {
            bump(&sh.stats.replays_wrong, 1);
            sh.example(format!("replay of accepted report {id} refused {s}: {t}"));
        }
        Answer::GaveUp(why) => {
            bump(&sh.stats.gave_up, 1);
            sh.example(format!("replay of {id} given up: {why}"));
        }
    }
}

/// Runs an open-loop load and returns its summary; the accepted ids are in
/// `spec.accepted_out` when it returns.
pub async fn run_open(spec: OpenSpec) -> anyhow::Result<OpenReport> {
    if spec.tokens.is_empty() || (!spec.closed && spec.rate <= 0.0) {
        anyhow::bail!("an open-loop run needs at least one token and a positive rate");
    }
    let out = match &spec.accepted_out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
        )),
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(256)
        .build()?;
    let watcher = match &spec.watch {
        Some(w) => {
            let watcher = crate::watch::Watcher::start(w.clone()).await?;
            eprintln!("loadgen: watching the queues of {} at {}", w.code, w.url);
            Some(watcher)
        }
        None => None,
    };
    let sh = std::sync::Arc::new(Shared {
        times: watcher.as_ref().map(|w| w.times.clone()),
        spec: spec.clone(),
        client,
        stats: Stats::default(),
        latencies: std::sync::Mutex::new(Vec::new()),
        examples: std::sync::Mutex::new(Vec::new()),
        replay_pool: std::sync::Mutex::new(Vec::new()),
        out: std::sync::Mutex::new(out),
    });
    let started = Instant::now();
    let progress = {
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(sh.spec.progress_every).await;
                sh.flush();
                let acc = get(&sh.stats.accepted);
                let rate = (acc - last.1) as f64 / last.0.elapsed().as_secs_f64().max(0.001);
                last = (Instant::now(), acc);
                eprintln!(
                    "loadgen: {:>6.0} s  sent {}  accepted {} ({rate:.0}/s)  in flight {}  retries {}  refused {}  gave up {}  replays {}/{} ok  late {}",
                    started.elapsed().as_secs_f64(),
                    get(&sh.stats.reports_sent),
                    acc,
                    get(&sh.stats.in_flight),
                    get(&sh.stats.retries),
                    get(&sh.stats.rejected),
                    get(&sh.stats.gave_up),
                    get(&sh.stats.replays_ok),
                    get(&sh.stats.replays),
                    get(&sh.stats.late),
                );
            }
        })
    };
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(spec.max_in_flight.max(1)));
    let mut mix = Mix(0x9E37_79B9_7F4A_7C15);
    let end = started + spec.duration;
    let mut next = started;
    let mut phone = 0usize;
    while next < end {
        let permit = if spec.closed {
            // The next phone free; the run ends when the time is up.
            let p = slots.clone().acquire_owned().await?;
            if Instant::now() >= end {
                break;
            }
            p
        } else {
            tokio::time::sleep_until(next.into()).await;
            match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    bump(&sh.stats.late, 1);
                    slots.clone().acquire_owned().await?
                }
            }
        };
        phone = (phone + 1) % spec.tokens.len();
        let roll = mix.unit();
        let pool_len = sh.replay_pool.lock().map(|p| p.len()).unwrap_or(0);
        let op: (u64, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>);
        bump(&sh.stats.operations, 1);
        if roll < spec.replay_share && pool_len > 0 {
            let pick = sh.replay_pool.lock().ok().and_then(|p| p.get((mix.next() % pool_len as u64) as usize).cloned());
            let Some((p, body)) = pick else { continue };
            bump(&sh.stats.replays, 1);
            let sh = sh.clone();
            // A replay adds no report: it takes the next arrival's slot only.
            op = (0, Box::pin(async move { replay(&sh, p, body).await }));
        } else if roll < spec.replay_share + spec.batch_share {
            let n = spec.batch_size.max(1);
            let items: Vec<_> = (0..n).map(|_| new_report(&spec, &mut mix, false)).collect();
            bump(&sh.stats.batches, 1);
            bump(&sh.stats.batch_items, n as u64);
            let sh = sh.clone();
            op = (n as u64, Box::pin(async move { batch(&sh, phone, items).await }));
        } else {
            let petition = roll < spec.replay_share + spec.batch_share + spec.petition_share;
            let emergency =
                !petition && roll < spec.replay_share + spec.batch_share + spec.petition_share + spec.emergency_share;
            let body = new_report_of(&spec, &mut mix, petition, emergency);
            bump(
                if petition {
                    &sh.stats.petitions
                } else if emergency {
                    &sh.stats.emergencies
                } else {
                    &sh.stats.singles
                },
                1,
            );
            let sh = sh.clone();
            op = (1, Box::pin(async move { single(&sh, phone, body).await }));
        }
        let (reports, fut) = op;
        bump(&sh.stats.reports_sent, reports);
        let sh2 = sh.clone();
        bump(&sh.stats.in_flight, 1);
        tokio::spawn(async move {
            let t = Instant::now();
            fut.await;
            if let Ok(mut l) = sh2.latencies.lock() {
                l.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            sh2.stats.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
        if spec.closed {
            continue;
        }
        // A replay takes a tenth of a report's interval.
        let step = if reports == 0 { 0.1 } else { reports as f64 };
        next += Duration::from_secs_f64(step / spec.rate);
        // Behind schedule by more than a second (slots were full): do not
        // burst to catch up, as phones would not all resend at once.
        let now = Instant::now();
        if next + Duration::from_secs(1) < now {
            next = now;
        }
    }
    eprintln!("loadgen: arrivals stopped; waiting for {} operations in flight", get(&sh.stats.in_flight));
    let _all = slots.acquire_many(spec.max_in_flight.max(1) as u32).await?;
    progress.abort();
    sh.flush();
    let seconds = started.elapsed().as_secs_f64();
    let queue = match watcher {
        Some(w) => {
            eprintln!("loadgen: waiting for the last cases in the stream");
            Some(w.finish(Duration::from_secs(15)).await)
        }
        None => None,
    };
    let mut lat = sh.latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let s = &sh.stats;
    Ok(OpenReport {
        mode: if spec.closed { "closed" } else { "open" },
        target_rate: if spec.closed { 0.0 } else { spec.rate },
        seconds,
        operations: get(&s.operations),
        reports_sent: get(&s.reports_sent),
        reports_accepted: get(&s.accepted),
        reports_per_second: get(&s.accepted) as f64 / spec.duration.as_secs_f64().max(0.001),
        singles: get(&s.singles),
        batches: get(&s.batches),
        batch_items: get(&s.batch_items),
        petitions: get(&s.petitions),
        emergencies: get(&s.emergencies),
        replays: get(&s.replays),
        replays_ok: get(&s.replays_ok),
        replays_wrong: get(&s.replays_wrong),
        retries: get(&s.retries),
        gave_up: get(&s.gave_up),
        rejected: get(&s.rejected),
        late: get(&s.late),
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        queue,
        examples: sh.examples.lock().map(|e| e.clone()).unwrap_or_default(),
    })
}
