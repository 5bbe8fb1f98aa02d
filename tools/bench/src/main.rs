//! The `gridwork-bench` command: load generator, benchmarks and the fault
//! suite's tools. Operators run `gridwork`; this measures it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gridwork-bench", version, about = "gridwork's load generator, benchmarks and fault-suite tools")]
struct Cli {
    /// Configuration file (TOML); `GRIDWORK_…` environment variables override it.
    #[arg(long, global = true, env = "GRIDWORK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulated phones: concurrent grid workers posting reports to intake.
    Loadgen {
        /// intake's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Grid workers' tokens (see `gridwork token`), comma-separated or
        /// repeated: one per simulated phone (the closed loop uses the first).
        #[arg(long, env = "GRIDWORK_LOADGEN_TOKEN", value_delimiter = ',', required = true)]
        token: Vec<String>,
        /// Concurrent phones (closed loop).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the reports are, WGS-84 (default: central Weihai).
        #[arg(long, default_value_t = 37.5095)]
        lat: f64,
        #[arg(long, default_value_t = 122.115)]
        lon: f64,
        /// Open loop: new reports per second, whatever intake's latency
        /// (default: closed loop, each phone waits for its answer).
        #[arg(long)]
        rate: Option<f64>,
        /// Closed loop with the open loop's realistic mix (batches,
        /// replays, petitions, emergencies, categories, parties) and its
        /// JSON summary: --concurrency phones, each sending again as soon
        /// as it is answered (without it, the closed loop posts one plain
        /// report at a time).
        #[arg(long, conflicts_with = "rate")]
        mix: bool,
        /// Every report id that got a 2xx, one per line.
        #[arg(long)]
        accepted_out: Option<PathBuf>,
        /// Open loop: share of operations that are offline batches.
        #[arg(long, default_value_t = 0.1)]
        batch_share: f64,
        /// Open loop: reports per offline batch.
        #[arg(long, default_value_t = 10)]
        batch_size: usize,
        /// Open loop: share of operations that replay an accepted report
        /// (same id and body: must answer 200 and store nothing).
        #[arg(long, default_value_t = 0.05)]
        replay_share: f64,
        /// Open loop: share of operations that are petitions.
        #[arg(long, default_value_t = 0.03)]
        petition_share: f64,
        /// Open loop: share of operations that are emergencies (their own
        /// lane through the pipeline).
        #[arg(long, default_value_t = 0.0)]
        emergency_share: f64,
        /// Open loop: time each report from its 2xx to its case in this
        /// unit's live stream (a dispatcher's view; a county code watches
        /// all its centres). Needs --watch-token.
        #[arg(long)]
        watch_code: Option<String>,
        /// The base URL serving the stream (mediation; default --url).
        #[arg(long)]
        watch_url: Option<String>,
        /// A dispatcher's token whose scope covers --watch-code.
        #[arg(long, env = "GRIDWORK_LOADGEN_WATCH_TOKEN")]
        watch_token: Option<String>,
        /// Open loop: reports scattered this many degrees around lat/lon.
        #[arg(long, default_value_t = 0.02)]
        spread: f64,
        /// Open loop: operations in flight at most (retrying ones included).
        #[arg(long, default_value_t = 4000)]
        max_in_flight: usize,
        /// Open loop: a phone retries a failed request (network error, 5xx,
        /// 429) with the same ids for this many seconds before giving up.
        #[arg(long, default_value_t = 300)]
        retry_for: u64,
        /// Open loop: seconds between progress lines.
        #[arg(long, default_value_t = 5)]
        progress_every: u64,
    },
    /// The fault suite's tools (scripts/faults.sh): deliberate bad
    /// messages, waiting for the pipeline to drain, checking the promises.
    Faults {
        #[command(subcommand)]
        command: FaultsCommand,
    },
    /// Grid lookups at province scale, beside PostgreSQL + PostGIS on the
    /// same polygons and points (was `gridwork grids bench`).
    Grids {
        #[arg(long, default_value = "37")]
        area: String,
        #[arg(long, default_value_t = 100_000)]
        grids: usize,
        /// Points per set (uniform, near edges).
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        /// Points for the per-point PostGIS queries.
        #[arg(long, default_value_t = 20_000)]
        per_point: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = gridwork_geoindex::DEFAULT_CELLS_PER_GRID)]
        cells_per_grid: f64,
        /// PostgreSQL server with PostGIS (scratch databases are created and dropped).
        #[arg(long, env = "GRIDWORK_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// KPI queries at scale (was `gridwork kpi bench`): synthesise cases into day tallies
    /// (a fresh SQLite file, or an empty database), time the query path per
    /// level and check it against the facts.
    Kpi {
        /// Synthetic cases.
        #[arg(long, default_value_t = 10_000_000)]
        cases: u64,
        /// Days the cases are created over, ending yesterday (China time).
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// An empty database (postgres://… or sqlite://PATH); default: a
        /// fresh SQLite file in a temporary directory.
        #[arg(long)]
        database_url: Option<String>,
        /// Queries per level and query shape.
        #[arg(long, default_value_t = 200)]
        queries: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep the temporary SQLite database.
        #[arg(long)]
        keep: bool,
    },
}

/// Where `faults` reads: the configuration, or these overrides.
#[derive(clap::Args, Clone)]
struct Backends {
    /// PostgreSQL (or SQLite) URL; default: `database.url` of the configuration.
    #[arg(long)]
    database_url: Option<String>,
    /// The broker (`kafka://HOST:PORT`); default: `bus.url`.
    #[arg(long)]
    bus_url: Option<String>,
    /// Topic and consumer-group prefix; default: `bus.topic_prefix`.
    #[arg(long)]
    topic_prefix: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum FaultsCommand {
    /// Publish deliberately bad messages (undecodable bytes, an unknown
    /// schema version) to the pipeline's topics; prints where each landed
    /// (topic, partition, offset), one JSON object per line.
    Poison {
        #[arg(long, default_value_t = 4)]
        count: usize,
        /// Also append the records to this file (for `faults verify`).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        backends: Backends,
    },
    /// Wait until every consumer group's lag is 0 and no report is still on
    /// its way to a queue; exits 1 if that does not happen in time.
    Drain {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        wait: u64,
        #[command(flatten)]
        backends: Backends,
    },
    /// Check the delivery promise: every accepted report in exactly one case
    /// (or linked to one), none twice, none stuck; KPIs equal a recount;
    /// lag 0; dead letters = the deliberate ones. Exits 1 on any finding.
    /// Rebuilds the KPI tallies to compare them: stop analytics first.
    Verify {
        /// The ids loadgen was told were accepted (`loadgen --accepted-out`).
        #[arg(long)]
        accepted: PathBuf,
        /// The records of `faults poison --out`.
        #[arg(long)]
        poisoned: Option<PathBuf>,
        /// Write the summary as JSON here too.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip the KPI recount (analytics still running).
        #[arg(long)]
        no_recompute: bool,
        #[command(flatten)]
        backends: Backends,
    },
}

async fn faults_command(cli: &Cli, command: &FaultsCommand) -> anyhow::Result<()> {
    let b = match command {
        FaultsCommand::Poison { backends, .. }
        | FaultsCommand::Drain { backends, .. }
        | FaultsCommand::Verify { backends, .. } => backends,
    };
    let mut config = gridwork::load_config(cli.config.as_ref(), b.data_dir.as_ref(), None)?;
    if let Some(u) = &b.database_url {
        config.database.url = u.clone();
    }
    if let Some(u) = &b.bus_url {
        config.bus.url = u.clone();
    }
    if let Some(p) = &b.topic_prefix {
        config.bus.topic_prefix = p.clone();
    }
    let prefix = config.bus.topic_prefix.clone();
    let bus = gridwork_bus::connect(&config.bus.url, "gridwork-faults").await?;
    let topics = gridwork_events::Topics::new(&prefix);
    match command {
        FaultsCommand::Poison { count, out, .. } => {
            let done = gridwork_bench::faults::poison(bus.as_ref(), &topics, *count).await?;
            let mut lines = String::new();
            for p in &done {
                lines.push_str(&serde_json::to_string(p)?);
                lines.push('\n');
            }
            print!("{lines}");
            if let Some(path) = out {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                f.write_all(lines.as_bytes())?;
            }
            eprintln!("faults poison: {} deliberate bad messages published", done.len());
        }
        FaultsCommand::Drain { wait, .. } => {
            let db = gridwork_storage::connect(&config.database.url, 4).await?;
            let started = std::time::Instant::now();
            let (done, b) =
                gridwork_bench::faults::drain(&db, bus.as_ref(), &prefix, std::time::Duration::from_secs(*wait)).await;
            println!(
                "{}",
                serde_json::json!({"drained": done, "seconds": started.elapsed().as_secs_f64(), "backlog": b})
            );
            if !done {
                eprintln!(
                    "faults drain: not drained after {wait} s: lag {}, {} reports not in a queue",
                    b.lag, b.unqueued
                );
                std::process::exit(1);
            }
            eprintln!("faults drain: drained in {:.1} s", started.elapsed().as_secs_f64());
        }
        FaultsCommand::Verify { accepted, poisoned, out, no_recompute, .. } => {
            let db = gridwork_storage::connect(&config.database.url, 4).await?;
            gridwork_storage::ensure_schema_current(&db).await?;
            let v = gridwork_bench::faults::verify(gridwork_bench::faults::VerifyInput {
                db: &db,
                bus: bus.as_ref(),
                prefix: &prefix,
                accepted: gridwork_bench::faults::read_ids(accepted)?,
                poisoned: match poisoned {
                    Some(p) => gridwork_bench::faults::read_poisoned(p)?,
                    None => Vec::new(),
                },
                recompute: !*no_recompute,
                fcr_window: chrono::Duration::days(config.kpi.fcr_window_days),
            })
            .await?;
            for f in &v.findings {
                println!("finding: {f}");
            }
            println!(
                "faults verify: {} accepted, {} lost, {} without case, {} duplicated, {} stuck; \
                 {} cases, {} linked, {} KPI facts, {} of {} KPI cells differ from the recount; lag {}; \
                 dead letters {} (expected {} from {} deliberate; {} unexpected, {} missing, {} copies) — {}",
                v.reports_accepted,
                v.lost,
                v.without_case,
                v.duplicated,
                v.stuck,
                v.cases,
                v.linked,
                v.kpi_facts,
                v.kpi_mismatches,
                v.kpi_cells_compared,
                v.lag,
                v.dead_letters,
                v.dead_letters_expected,
                v.deliberate,
                v.dead_letters_unexpected,
                v.dead_letters_missing,
                v.dead_letter_copies,
                if v.ok { "OK" } else { "FAILED" }
            );
            if let Some(path) = out {
                std::fs::write(path, serde_json::to_string_pretty(&v)?)?;
            }
            if !v.ok {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Loadgen {
            url,
            token,
            concurrency,
            seconds,
            lat,
            lon,
            rate,
            mix,
            accepted_out,
            batch_share,
            batch_size,
            replay_share,
            petition_share,
            emergency_share,
            watch_code,
            watch_url,
            watch_token,
            spread,
            max_in_flight,
            retry_for,
            progress_every,
        } if rate.is_some() || *mix => {
            let watch = match (watch_code, watch_token) {
                (Some(code), Some(token)) => Some(gridwork_bench::watch::WatchSpec {
                    url: watch_url.clone().unwrap_or_else(|| url.clone()),
                    token: token.clone(),
                    code: code.clone(),
                }),
                (None, None) => None,
                _ => anyhow::bail!("--watch-code and --watch-token go together"),
            };
            let closed = *mix;
            let rate = rate.unwrap_or(0.0);
            if *seconds == 0 || (!closed && rate <= 0.0) || (closed && *concurrency == 0) {
                anyhow::bail!("--rate (or --concurrency with --mix) must be positive and --seconds at least 1");
            }
            if closed {
                eprintln!(
                    "loadgen: closed loop, {concurrency} phones as fast as answered ({} tokens) to {url} for {seconds} s \
                     (batches {batch_share}, replays {replay_share}, petitions {petition_share}, emergencies {emergency_share}) …",
                    token.len()
                );
            } else {
                eprintln!(
                    "loadgen: open loop, {rate} reports/s from {} phones to {url} for {seconds} s \
                     (batches {batch_share}, replays {replay_share}, petitions {petition_share}) …",
                    token.len()
                );
            }
            let r = gridwork_bench::loadgen::run_open(gridwork_bench::loadgen::OpenSpec {
                url: url.trim_end_matches('/').to_owned(),
                tokens: token.clone(),
                rate,
                duration: std::time::Duration::from_secs(*seconds),
                lat: *lat,
                lon: *lon,
                spread: *spread,
                batch_share: *batch_share,
                batch_size: *batch_size,
                replay_share: *replay_share,
                petition_share: *petition_share,
                emergency_share: *emergency_share,
                watch,
                max_in_flight: if closed { *concurrency } else { *max_in_flight },
                retry_for: std::time::Duration::from_secs(*retry_for),
                accepted_out: accepted_out.clone(),
                progress_every: std::time::Duration::from_secs((*progress_every).max(1)),
                closed,
            })
            .await?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "loadgen: {} reports accepted of {} sent in {:.1} s ({:.0}/s); {} retries, {} refused, {} given up; \
                 replays {} ok / {} wrong; p50 {:.1} ms, p99 {:.1} ms",
                r.reports_accepted,
                r.reports_sent,
                r.seconds,
                r.reports_per_second,
                r.retries,
                r.rejected,
                r.gave_up,
                r.replays_ok,
                r.replays_wrong,
                r.p50_ms,
                r.p99_ms
            );
            if let Some(q) = &r.queue {
                eprintln!(
                    "loadgen: report → queue: {} of {} seen; p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms; \
                     emergencies {}: p50 {:.1} ms, p99 {:.1} ms; {} not seen, {} reconnects",
                    q.seen,
                    q.accepted,
                    q.p50_ms,
                    q.p99_ms,
                    q.p999_ms,
                    q.max_ms,
                    q.emergencies,
                    q.emergency_p50_ms,
                    q.emergency_p99_ms,
                    q.not_seen,
                    q.reconnects
                );
            }
        }
        Command::Loadgen { url, token, concurrency, seconds, lat, lon, accepted_out, .. } => {
            let token = token.first().cloned().unwrap_or_default();
            if *concurrency == 0 || *seconds == 0 {
                anyhow::bail!("--concurrency and --seconds must be at least 1");
            }
            eprintln!("loadgen: {concurrency} phones posting to {url} for {seconds} s …");
            let r = gridwork_bench::loadgen::run(gridwork_bench::loadgen::LoadSpec {
                url: url.trim_end_matches('/').to_owned(),
                token,
                concurrency: *concurrency,
                duration: std::time::Duration::from_secs(*seconds),
                lat: *lat,
                lon: *lon,
                accepted_out: accepted_out.clone(),
            })
            .await?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "loadgen: {} reports stored ({} errors) in {:.1} s = {:.0} reports/s; latency p50 {:.1} ms, p99 {:.1} ms",
                r.created, r.errors, r.seconds, r.reports_per_second, r.p50_ms, r.p99_ms
            );
        }
        Command::Faults { command } => faults_command(&cli, command).await?,
        Command::Grids { area, grids: n, points, per_point, seed, cells_per_grid, postgres } => {
            gridwork_bench::grids_bench::run(gridwork_bench::grids_bench::BenchArgs {
                area: area.clone(),
                grids: *n,
                points: *points,
                per_point: *per_point,
                seed: *seed,
                cells_per_grid: *cells_per_grid,
                postgres: postgres.clone(),
            })
            .await?;
        }
        Command::Kpi { cases, days, database_url, queries, seed, keep } => {
            gridwork_bench::kpi_bench::run(gridwork_bench::kpi_bench::KpiBenchArgs {
                cases: *cases,
                days: *days,
                database_url: database_url.clone(),
                queries: *queries,
                seed: *seed,
                keep: *keep,
            })
            .await?;
        }
    }
    Ok(())
}
