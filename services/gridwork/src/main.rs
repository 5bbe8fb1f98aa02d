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
    /// KPIs: `gridwork kpi recompute` rebuilds them from the event history.
    Kpi {
        #[command(subcommand)]
        command: KpiCommand,
    },
    /// Personal information at rest: the keyring that encrypts parties'
    /// names, phones and ID numbers.
    Pii {
        #[command(subcommand)]
        command: PiiCommand,
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
    /// Grid registry: synthesise, validate, import, export.
    Grids {
        #[command(subcommand)]
        command: GridsCommand,
    },
    /// API keys of Open311 integrations (`/open311/v2/`): issue, list, revoke.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Dead letters: list them, show one, put them back on their source
    /// topic after the cause is fixed (consumers de-duplicate by event id,
    /// so a replay is idempotent).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Every consumer group's lag per partition (0 everywhere: caught up).
    Lag {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        data_dir: Option<PathBuf>,
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
        /// A mediator's channel (people_mediation, petition, …); required for mediators.
        #[arg(long)]
        channel: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: i64,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Which dead letters: by the dead-letter topic's partition and offsets, by
/// source topic, by event id or event id range.
#[derive(clap::Args, Clone)]
struct DlqFilter {
    /// Only those from this topic (e.g. gridwork.report.submitted).
    #[arg(long)]
    source: Option<String>,
    /// Only this partition of the dead-letter topic.
    #[arg(long)]
    partition: Option<i32>,
    /// From this offset of the dead-letter topic (inclusive).
    #[arg(long)]
    from: Option<i64>,
    /// Up to this offset (inclusive).
    #[arg(long)]
    to: Option<i64>,
    /// Only this event id (repeatable).
    #[arg(long = "event-id")]
    event_ids: Vec<String>,
    /// Event ids from this one (inclusive; UUIDv7 ids sort by time).
    #[arg(long)]
    event_from: Option<String>,
    /// Event ids up to this one (inclusive).
    #[arg(long)]
    event_to: Option<String>,
    /// At most this many (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl DlqFilter {
    fn selection(&self) -> gridwork::dlq::Selection {
        gridwork::dlq::Selection {
            source: self.source.clone(),
            partition: self.partition,
            from: self.from,
            to: self.to,
            event_ids: self.event_ids.clone(),
            event_from: self.event_from.clone(),
            event_to: self.event_to.clone(),
            limit: self.limit,
        }
    }
}

#[derive(Subcommand)]
enum DlqCommand {
    /// One line per dead letter: where, when, from where, which group, why.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Everything about the selected dead letters: headers and envelope.
    Show {
        #[command(flatten)]
        filter: DlqFilter,
    },
    /// Publish the selected dead letters to their source topics again.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
        /// Say what would be replayed; publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KpiCommand {
    /// Rebuild every case's KPI facts from the case-lifecycle events alone
    /// (after a definition changed). Stop analytics first.
    Recompute {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Issue a key to an integration; prints the key (shown only now: only
    /// its SHA-256 is stored).
    Issue {
        /// The integration (e.g. `hotline-12345`).
        #[arg(long)]
        name: String,
        /// Reports are recorded as reported by this grid worker (username),
        /// or by this integration identity if no such user exists.
        #[arg(long)]
        user: String,
        /// The province, city or county code the key may report into
        /// (default: anywhere gridwork serves).
        #[arg(long, default_value = "")]
        scope: String,
        /// Category codes or dotted prefixes the key may report
        /// (`environment.,hazard.fire`; default: every category Open311 offers).
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List the keys (never the keys themselves).
    List {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`ak_…`, see `gridwork apikey list`).
        id: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PiiCommand {
    /// Add a fresh key to the keyring and make it current (creating the
    /// keyring if missing). Old keys stay, so everything sealed still opens.
    Rotate {
        /// The keyring file; default: `petition.keyring_file` of the configuration.
        #[arg(long)]
        keyring: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Re-wrap every stored report's data key with the current key (the
    /// ciphertext stays as it is), so older keys can be retired.
    Rewrap {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum GridsCommand {
    /// Partition real county polygons into synthetic grids (a Voronoi
    /// partition of seeded random points, clipped to each county), written
    /// as a grid FeatureCollection ready for `grids import`.
    Synth {
        /// Counties to partition: codes or prefixes, comma-separated
        /// (37 = Shandong, 3710 = Weihai, 371002 = one county).
        #[arg(long, default_value = "3710")]
        area: String,
        /// Total grids, spread over the counties by area.
        #[arg(long, default_value_t = 3000)]
        grids: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Grids per community (about).
        #[arg(long, default_value_t = 8)]
        per_community: usize,
        /// Communities per street (about).
        #[arg(long, default_value_t = 12)]
        per_street: usize,
        /// Administrative boundaries (default: the shipped Shandong + Fujian file).
        #[arg(long)]
        boundaries: Option<PathBuf>,
        #[arg(long, short, default_value = "grids.geojson")]
        out: PathBuf,
    },
    /// Check a grid file as an import would, without a database; exits 1 on errors.
    Validate {
        file: PathBuf,
        #[arg(long)]
        boundaries: Option<PathBuf>,
    },
    /// Import a grid FeatureCollection as a new version.
    Import {
        file: PathBuf,
        /// When the version applies (RFC 3339); default: as soon as allowed
        /// (now + assigner.version_lead_ms + a margin).
        #[arg(long)]
        valid_from: Option<String>,
        #[arg(long, default_value = "")]
        label: String,
        /// Counties the version covers besides those of its grids.
        #[arg(long, value_delimiter = ',')]
        counties: Vec<String>,
        /// Validate against the database's counties, store nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List the stored versions.
    Versions {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write a stored version as a grid FeatureCollection.
    Export {
        /// Version id (default: the latest).
        #[arg(long)]
        version: Option<i64>,
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

async fn grids_command(cli: &Cli, command: &GridsCommand) -> anyhow::Result<()> {
    use gridwork::grids;
    match command {
        GridsCommand::Synth { area, grids: n, seed, per_community, per_street, boundaries, out } => {
            grids::synth_cmd(grids::SynthArgs {
                boundaries: boundaries.as_deref(),
                area,
                grids: *n,
                seed: *seed,
                per_community: *per_community,
                per_street: *per_street,
                out,
            })?;
        }
        GridsCommand::Validate { file, boundaries } => {
            if !grids::validate_cmd(file, boundaries.as_deref())? {
                std::process::exit(1);
            }
        }
        GridsCommand::Import { file, valid_from, label, counties, dry_run, data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let lead = config.assigner.version_lead_ms;
            let text =
                std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let ctx = Context::connect(config, Schema::Migrate, "grids-import").await?;
            gridwork::seed::admin_units(&ctx.db).await?;
            let opts = gridwork_assigner::import::ImportOptions {
                label: label.clone(),
                valid_from: valid_from.as_deref().map(grids::parse_time).transpose()?,
                counties: (!counties.is_empty()).then(|| counties.clone()),
                source: file.display().to_string(),
                created_by: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
                dry_run: *dry_run,
            };
            match gridwork_assigner::import::import(&ctx.db, &text, opts, lead, |l| eprintln!("import: {l}")).await {
                Ok(out) => {
                    for w in out.report.warnings() {
                        println!("{w}");
                    }
                    match out.version {
                        Some(v) => println!(
                            "version {v}: {} grids in {} counties, valid from {}",
                            out.grids,
                            out.counties.len(),
                            out.valid_from
                        ),
                        None => println!("dry run: {} grids would be valid from {}", out.grids, out.valid_from),
                    }
                }
                Err(gridwork_assigner::import::ImportError::Invalid(report)) => {
                    println!("{report}");
                    anyhow::bail!("{}: nothing imported", file.display());
                }
                Err(gridwork_assigner::import::ImportError::Parse(errors)) => {
                    for e in &errors {
                        println!("error: {e}");
                    }
                    anyhow::bail!("{}: {} malformed feature(s); nothing imported", file.display(), errors.len());
                }
                Err(e) => return Err(e.into()),
            }
        }
        GridsCommand::Versions { data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let ctx = Context::connect(config, Schema::RequireCurrent, "grids-versions").await?;
            for v in gridwork_storage::grids::versions(&ctx.db).await? {
                println!(
                    "{:>5}  valid from {}  {:>7} grids  counties {}  {:?} (from {}, by {})",
                    v.id, v.valid_from, v.grids, v.counties, v.label, v.source, v.created_by
                );
            }
        }
        GridsCommand::Export { version, out, data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let ctx = Context::connect(config, Schema::RequireCurrent, "grids-export").await?;
            let id = match version {
                Some(v) => *v,
                None => gridwork_storage::grids::latest_id(&ctx.db)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no grid versions stored"))?,
            };
            let text = gridwork_assigner::import::export(&ctx.db, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("grid version {id} not found"))?;
            let path = out.clone().unwrap_or_else(|| grids::export_path(id));
            std::fs::write(&path, text)?;
            println!("version {id} written to {}", path.display());
        }
    }
    Ok(())
}

fn load(cli_config: Option<&PathBuf>, data_dir: Option<&PathBuf>, listen: Option<&String>) -> anyhow::Result<Config> {
    gridwork::load_config(cli_config, data_dir, listen)
}

async fn dlq_command(cli: &Cli, command: &DlqCommand) -> anyhow::Result<()> {
    let filter = match command {
        DlqCommand::List { filter, .. } | DlqCommand::Show { filter } | DlqCommand::Replay { filter, .. } => filter,
    };
    let config = load(cli.config.as_ref(), filter.data_dir.as_ref(), None)?;
    let bus = gridwork_bus::connect(&config.bus.url, "gridwork-dlq").await?;
    let topics = gridwork_events::Topics::new(&config.bus.topic_prefix);
    let selection = filter.selection();
    match command {
        DlqCommand::List { json, .. } => {
            let found = gridwork::dlq::select(bus.as_ref(), &topics, &selection).await?;
            for d in &found {
                if *json {
                    println!("{}", serde_json::to_string(d)?);
                } else {
                    println!("{}", d.line());
                }
            }
            if !*json {
                eprintln!("dlq: {} dead letter(s) in {}", found.len(), topics.dead_letter);
            }
        }
        DlqCommand::Show { .. } => {
            for d in gridwork::dlq::select(bus.as_ref(), &topics, &selection).await? {
                println!("{}", serde_json::to_string_pretty(&d)?);
                println!("headers:");
                for (k, v) in &d.message.headers {
                    println!("  {k}: {v}");
                }
                match gridwork_events::Event::decode(&d.message.payload) {
                    Ok(e) => println!("event: {:#?}", e.payload),
                    Err(e) => println!("payload: {} bytes that do not decode ({e})", d.message.payload.len()),
                }
                println!();
            }
        }
        DlqCommand::Replay { dry_run, .. } => {
            let verb = if *dry_run { "would replay" } else { "replaying" };
            let done = gridwork::dlq::replay(&bus, &topics, &selection, *dry_run, |d| {
                eprintln!(
                    "dlq: {verb} {}:{} to {} (event {})",
                    d.partition,
                    d.offset,
                    d.source_topic,
                    d.event_id.as_deref().unwrap_or("-")
                )
            })
            .await?;
            println!("{}", serde_json::to_string(&done)?);
        }
    }
    Ok(())
}

async fn apikey_command(cli: &Cli, command: &ApikeyCommand) -> anyhow::Result<()> {
    use gridwork_intake::open311;
    let data_dir = match command {
        ApikeyCommand::Issue { data_dir, .. }
        | ApikeyCommand::List { data_dir }
        | ApikeyCommand::Revoke { data_dir, .. } => data_dir,
    };
    let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
    let db = gridwork_storage::connect(&config.database.url, config.database.pool_size).await?;
    gridwork_storage::ensure_schema_current(&db).await?;
    let scope = |k: &gridwork_storage::entity::api_key::Model| {
        let area = if k.area.is_empty() { "anywhere served" } else { &k.area };
        let categories = if k.categories.is_empty() { "every category" } else { &k.categories };
        format!("area {area}, {categories}")
    };
    match command {
        ApikeyCommand::Issue { name, user, scope: area, categories, .. } => {
            let new = open311::NewKey {
                name: name.clone(),
                user: user.clone(),
                area: area.clone(),
                categories: categories.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect(),
                created_by: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
            };
            let (k, key) = open311::issue_key(&db, new).await?;
            eprintln!(
                "apikey: issued {} to {} (reports as {}; {}); the key is shown only now:",
                k.id,
                k.name,
                k.reporter,
                scope(&k)
            );
            println!("{key}");
        }
        ApikeyCommand::List { .. } => {
            for k in open311::list_keys(&db).await? {
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {}", t.format("%Y-%m-%d %H:%M")),
                    None => "active".to_owned(),
                };
                println!(
                    "{}  {}…  {:<24} reports as {:<16} {}  issued {} by {}  {state}",
                    k.id,
                    k.key_prefix,
                    k.name,
                    k.reporter,
                    scope(&k),
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.created_by
                );
            }
        }
        ApikeyCommand::Revoke { id, .. } => match open311::revoke_key(&db, id).await? {
            (true, k) => println!("apikey: {} ({}) revoked", k.id, k.name),
            (false, k) => println!("apikey: {} ({}) was already revoked", k.id, k.name),
        },
    }
    Ok(())
}

async fn pii_command(cli: &Cli, command: &PiiCommand) -> anyhow::Result<()> {
    use gridwork_platform::pii::Keyring;
    match command {
        PiiCommand::Rotate { keyring, data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let path = keyring.clone().unwrap_or_else(|| PathBuf::from(&config.petition.keyring_file));
            let existed = path.exists();
            let mut ring = Keyring::load_or_create(&path)?;
            if existed {
                let kid = ring.rotate()?;
                ring.save(&path)?;
                eprintln!(
                    "pii: key {kid} added to {} and made current; run `gridwork pii rewrap` to move stored data to it",
                    path.display()
                );
            } else {
                eprintln!("pii: keyring {} created with key {}", path.display(), ring.current());
            }
            println!("{}", ring.current());
        }
        PiiCommand::Rewrap { data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let ring = Keyring::load_or_create(std::path::Path::new(&config.petition.keyring_file))?;
            let db = gridwork_storage::connect(&config.database.url, config.database.pool_size).await?;
            gridwork_storage::ensure_schema_current(&db).await?;
            let moved = gridwork_platform::pii::rewrap_all(&db, &ring, |n| {
                eprintln!("pii: {n} values re-wrapped so far");
            })
            .await?;
            println!("pii: {moved} values (parties, matters, notes and reasons) re-wrapped to key {}", ring.current());
        }
    }
    Ok(())
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
            let added = gridwork::seed::admin_units(&ctx.db).await?;
            println!("database {url} is up to date ({added} administrative units added)");
            if *demo {
                let d = gridwork::seed::seed_if_empty(&ctx.db).await?;
                println!("demo city {}: {} grids (demo point in grid {})", d.city, d.grids, d.demo_grid);
            }
        }
        Command::Grids { command } => grids_command(&cli, command).await?,
        Command::Pii { command } => pii_command(&cli, command).await?,
        Command::Apikey { command } => apikey_command(&cli, command).await?,
        Command::Dlq { command } => dlq_command(&cli, command).await?,
        Command::Lag { json, data_dir } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let bus = gridwork_bus::connect(&config.bus.url, "gridwork-lag").await?;
            let topics = gridwork_events::Topics::new(&config.bus.topic_prefix);
            let rows = gridwork::dlq::lag(bus.as_ref(), &config.bus.topic_prefix, &topics).await?;
            for r in &rows {
                if *json {
                    println!("{}", serde_json::to_string(r)?);
                } else {
                    let committed = r.committed.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                    println!(
                        "{:<32} {:<48} {:>3}  committed {:>9}  end {:>9}  lag {}",
                        r.group, r.topic, r.partition, committed, r.high, r.lag
                    );
                }
            }
            if !*json {
                println!("total lag: {}", rows.iter().map(|r| r.lag).sum::<i64>());
            }
        }
        Command::Kpi { command: KpiCommand::Recompute { data_dir } } => {
            let config = load(cli.config.as_ref(), data_dir.as_ref(), None)?;
            let db = gridwork_storage::connect(&config.database.url, config.database.pool_size).await?;
            gridwork_storage::ensure_schema_current(&db).await?;
            let topics = gridwork_events::Topics::new(&config.bus.topic_prefix);
            let started = std::time::Instant::now();
            let n = gridwork_analytics::recompute(
                &db,
                &topics.case_lifecycle,
                chrono::Duration::days(config.kpi.fcr_window_days),
                chrono::Utc::now(),
                |n| eprintln!("kpi recompute: {n} events folded"),
            )
            .await?;
            println!("kpi recompute: {n} events folded in {:.1} s", started.elapsed().as_secs_f64());
        }
        Command::Token { role, scope, user, channel, ttl, data_dir } => {
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
            match (role, channel) {
                (Role::Mediator, None) => anyhow::bail!("--channel is required for role mediator"),
                (Role::Mediator, Some(c)) if gridwork_domain::Channel::parse(c).is_none() => anyhow::bail!(
                    "unknown channel {c:?}; expected one of {}",
                    gridwork_domain::Channel::ALL.map(|c| c.as_str()).join(", ")
                ),
                (Role::Mediator, Some(_)) | (_, None) => {}
                (_, Some(_)) => anyhow::bail!("--channel applies to mediators only"),
            }
            let actor = Actor {
                id: user.clone().unwrap_or_else(|| role.to_string()),
                role,
                scope: scope.clone(),
                channel: channel.clone(),
            };
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
    println!("  routes     {base}/v1/reports  /v1/me/reports  /v1/grids/locate  /v1/cases  /v1/kpis  /health/ready");
    let admin_host = gridwork_platform::http::config_host(&c.http.admin_listen);
    println!(
        "  admin      http://{admin_host}:{}/metrics  /health/ready  (Prometheus and probes; not on the API listener)",
        up.app.admin_port()
    );
    println!("  API        {base}/docs/  (OpenAPI 3: {base}/openapi.json; Open311: {base}/open311/v2/services.json)");
    println!(
        "  users      password {:?} for POST {base}/v1/auth/token; ready-made tokens (valid {} h):",
        gridwork::seed::DEMO_PASSWORD,
        c.auth.token_ttl_secs / 3600
    );
    for (user, role, scope, channel) in &d.users {
        let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let actor = Actor { id: user.clone(), role, scope: scope.clone(), channel: channel.clone() };
        let (token, _) = up.ctx.issuer.issue(&actor)?;
        let what = match channel {
            Some(c) => format!("{scope} {c}"),
            None => scope.clone(),
        };
        println!("    {user:<20} {:<12} scope {what:<16} {token}", role.as_str());
    }
    Ok(())
}
