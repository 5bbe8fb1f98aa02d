//! The `gridwork` command.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::auth::Issuer;
use gridwork_platform::{Config, Context, Schema};

#[derive(Parser)]
#[command(
    name = "gridwork",
    version,
    about = "Grid-based grassroots governance: reports → grids → mediation queues → KPIs"
)]
struct Cli {
    /// Configuration file (TOML); `GRIDWORK_…` environment variables override it.
    #[arg(long, global = true, env = "GRIDWORK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on the embedded default (SQLite,
    /// in-process event log and cache); seeds the demo city on first start.
    Up {
        /// Where to keep the database, event log and keys.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (HOST:PORT).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply pending database migrations.
    Migrate {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also seed the demo city if the database has no grids (what
        /// `gridwork up` does on first start), for running services alone.
        #[arg(long)]
        demo: bool,
    },
    /// Simulated phones: concurrent grid workers posting reports to intake.
    Loadgen {
        /// intake's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// A grid worker's token (see `gridwork token`).
        #[arg(long, env = "GRIDWORK_LOADGEN_TOKEN")]
        token: String,
        /// Concurrent phones.
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
    },
    /// Print a token from the embedded issuer.
    Token {
        /// grid_worker, dispatcher, mediator, analyst or admin.
        #[arg(long)]
        role: String,
        /// Administrative code the token acts in (grid, centre or jurisdiction).
        #[arg(long, default_value = "")]
        scope: String,
        /// User id (the token's subject); default: the role's name.
        #[arg(long)]
        user: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: i64,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn load(cli_config: Option<&PathBuf>, data_dir: Option<&PathBuf>, listen: Option<&String>) -> anyhow::Result<Config> {
    let mut overrides = Vec::new();
    if let Some(d) = data_dir {
        overrides.push(("data_dir", d.display().to_string()));
    }
    if let Some(l) = listen {
        overrides.push(("http.listen", l.clone()));
    }
    Ok(Config::load_with(cli_config.map(PathBuf::as_path), &overrides)?)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Up { data_dir, listen } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), listen.as_ref())?;
            gridwork_platform::telemetry::init(&config.log.format);
            let up = gridwork::build(config).await?;
            banner(&up)?;
            up.app.run_until_stopped().await?;
        }
        Command::Migrate { data_dir, demo } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            gridwork_platform::telemetry::init(&config.log.format);
            let url = config.database.url.clone();
            let ctx = Context::connect(config, Schema::Migrate, "migrate").await?;
            println!("database {url} is up to date");
            if *demo {
                let d = gridwork::seed::seed_if_empty(&ctx.db).await?;
                println!("demo city {}: {} grids (demo point in grid {})", d.city, d.grids, d.demo_grid);
            }
        }
        Command::Loadgen { url, token, concurrency, seconds, lat, lon } => {
            if *concurrency == 0 || *seconds == 0 {
                anyhow::bail!("--concurrency and --seconds must be at least 1");
            }
            eprintln!("loadgen: {concurrency} phones posting to {url} for {seconds} s …");
            let r = gridwork::loadgen::run(gridwork::loadgen::LoadSpec {
                url: url.trim_end_matches('/').to_owned(),
                token: token.clone(),
                concurrency: *concurrency,
                duration: std::time::Duration::from_secs(*seconds),
                lat: *lat,
                lon: *lon,
            })
            .await?;
            println!("{}", serde_json::to_string(&r)?);
            eprintln!(
                "loadgen: {} reports stored ({} errors) in {:.1} s = {:.0} reports/s; latency p50 {:.1} ms, p99 {:.1} ms",
                r.created, r.errors, r.seconds, r.reports_per_second, r.p50_ms, r.p99_ms
            );
        }
        Command::Token { role, scope, user, ttl, data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            if role != Role::Admin && scope.is_empty() {
                anyhow::bail!("--scope is required for role {role}");
            }
            if !scope.is_empty() {
                gridwork_domain::codes::level_of(scope)?;
            }
            let issuer = Issuer::load_or_create(
                std::path::Path::new(&config.auth.signing_key_file),
                &config.auth.issuer,
                &config.auth.audience,
                config.auth.token_ttl_secs,
            )?;
            let actor = Actor { id: user.clone().unwrap_or_else(|| role.to_string()), role, scope: scope.clone() };
            let (token, _) = issuer.issue_with(&actor, *ttl)?;
            println!("{token}");
        }
    }
    Ok(())
}

fn banner(up: &gridwork::AllInOne) -> anyhow::Result<()> {
    let c = &up.ctx.config;
    let host = c.http.listen.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    let base = format!("http://{host}:{}", up.app.port());
    let d = &up.demo;
    println!("gridwork is up: {base}");
    println!("  data dir   {}  (database {}, event log {})", c.data_dir.display(), c.database.url, c.bus.url);
    println!(
        "  demo city  {}: {} counties, {} streets (综治中心), {} communities, {} grids",
        d.city, d.counties, d.streets, d.communities, d.grids
    );
    println!(
        "  demo point lat {} lon {} lies in grid {} (centre {})",
        d.demo_point.0, d.demo_point.1, d.demo_grid, d.demo_centre
    );
    println!("  routes     {base}/v1/reports  /v1/me/reports  /v1/grids/locate  /v1/cases  /v1/kpis  /health/ready  /metrics");
    println!(
        "  users      password {:?} for POST {base}/v1/auth/token; ready-made tokens (valid {} h):",
        gridwork::seed::DEMO_PASSWORD,
        c.auth.token_ttl_secs / 3600
    );
    for (user, role, scope) in &d.users {
        let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let (token, _) = up.ctx.issuer.issue(&Actor { id: user.clone(), role, scope: scope.clone() })?;
        println!("    {user:<20} {:<12} scope {scope:<16} {token}", role.as_str());
    }
    Ok(())
}
