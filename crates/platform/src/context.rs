//! What every service shares: configuration, database, bus, cache, tokens
//! and metrics, connected and checked once at start-up.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use gridwork_bus::{EventBus, TopicSpec};
use gridwork_events::Topics;
use sea_orm::DatabaseConnection;

use crate::auth::{Issuer, Verifier};
use crate::cache::{self, Cache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::revocation::Revocations;

#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
    pub cache: Arc<dyn Cache>,
    pub topics: Topics,
    pub issuer: Arc<Issuer>,
    /// Checks callers' tokens: the trusted keys and the revocation list.
    pub verifier: Verifier,
    /// Revoked tokens (the database's list, marked in the cache).
    pub revocations: Revocations,
    pub metrics: Metrics,
    /// Live fan-out of changes to every replica (Redis pub/sub when the
    /// cache is Redis, in-process otherwise).
    pub fanout: crate::fanout::Fanout,
    /// Keys of personal information at rest.
    pub keyring: Arc<crate::pii::Keyring>,
    /// Stops the process-wide background work (the JWKS refresher, the
    /// fan-out listener) once the HTTP server has drained: requests up to
    /// the last one of a drain still need current keys.
    pub background: tokio_util::sync::CancellationToken,
    /// The consumers this process runs, for readiness and metrics.
    pub consumers: crate::consumers::Consumers,
}

impl AsRef<Revocations> for Context {
    fn as_ref(&self) -> &Revocations {
        &self.revocations
    }
}

/// Whether start-up may change the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (the all-in-one runner, `gridwork migrate`).
    Migrate,
    /// Refuse to start if the schema is behind (standalone services).
    RequireCurrent,
}

impl Context {
    /// Connects everything `service` needs (its name goes to the brokers as
    /// the client id).
    pub async fn connect(config: Config, schema: Schema, service: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        let db = gridwork_storage::connect_with(
            &config.database.url,
            config.database.pool_size,
            std::time::Duration::from_millis(config.database.acquire_timeout_ms),
        )
        .await?;
        match schema {
            Schema::Migrate => gridwork_storage::migrate(&db).await?,
            Schema::RequireCurrent => gridwork_storage::ensure_schema_current(&db).await?,
        }
        let bus = gridwork_bus::connect(&config.bus.url, &format!("gridwork-{service}")).await?;
        let topics = Topics::new(&config.bus.topic_prefix);
        let min_insync = (config.bus.min_insync_replicas > 0).then_some(config.bus.min_insync_replicas);
        for (name, compacted) in [
            (&topics.report_submitted, false),
            (&topics.report_assigned, false),
            (&topics.report_submitted_emergency, false),
            (&topics.report_assigned_emergency, false),
            (&topics.case_lifecycle, false),
            (&topics.kpi_snapshot, true),
            (&topics.dead_letter, false),
        ] {
            let retention =
                if *name == topics.dead_letter { config.bus.dead_letter_retention_ms } else { config.bus.retention_ms };
            bus.create_topic(&TopicSpec {
                name: name.clone(),
                partitions: config.bus.partitions,
                compacted,
                // A compacted topic keeps the latest value per key for good.
                retention_ms: (!compacted).then_some(retention),
                min_insync_replicas: min_insync,
            })
            .await?;
        }
        let cache = cache::connect(&config.cache.url, &config.cache.key_prefix)?;
        let keyring = crate::pii::Keyring::load_or_create(Path::new(&config.petition.keyring_file))?;
        if schema == Schema::Migrate {
            let sealed = crate::pii::seal_legacy_parties(&db, &keyring).await?;
            if sealed > 0 {
                tracing::info!(reports = sealed, "personal information of older reports encrypted");
            }
            let matters = crate::pii::seal_legacy_matters(&db, &keyring).await?;
            if matters > 0 {
                tracing::info!(reports = matters, "petition matters of older reports encrypted");
            }
            let statements = crate::pii::seal_legacy_statements(&db, &keyring).await?;
            if statements > 0 {
                tracing::info!(events = statements, "reasons and notes of older case events encrypted");
            }
        }
        let issuer = Issuer::load_or_create(
            Path::new(&config.auth.signing_key_file),
            &config.auth.issuer,
            &config.auth.audience,
            config.auth.token_ttl_secs,
        )?;
        let background = tokio_util::sync::CancellationToken::new();
        let revocations = Revocations::new(db.clone(), cache.clone());
        let mut verifier = issuer.verifier(config.auth.leeway_secs).with_revocations(revocations.clone());
        if !config.auth.external_jwks_url.is_empty() {
            let alg = crate::auth::pinned_algorithm(&config.auth.external_algorithm)
                .ok_or_else(|| anyhow::anyhow!("auth.external_algorithm must be RS256, ES256 or EdDSA"))?;
            let (external, refresher) = crate::auth::JwksRefresher::start(
                &config.auth.external_jwks_url,
                &config.auth.external_issuer,
                &config.auth.external_audience,
                alg,
                std::time::Duration::from_secs(config.auth.jwks_refresh_secs),
            )
            .await?;
            verifier = verifier.with_external(&external, config.auth.leeway_secs);
            tokio::spawn(refresher.run(background.clone()));
        }
        let metrics = Metrics::new()?;
        let consumers = crate::consumers::Consumers::default();
        consumers.install(&metrics, bus.clone(), background.clone())?;
        let fanout = crate::fanout::Fanout::connect(&config.cache.url, &config.cache.key_prefix, background.clone());
        Ok(Context {
            config,
            db,
            bus,
            cache,
            topics,
            issuer: Arc::new(issuer),
            verifier,
            revocations,
            metrics,
            fanout,
            keyring: Arc::new(keyring),
            background,
            consumers,
        })
    }

    /// Reads (or creates, on first start, mode 0600 from the first byte:
    /// [`crate::keyfile`]) a secret key file of 32 random bytes.
    pub fn secret(path: &Path) -> anyhow::Result<Vec<u8>> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        if path.exists() {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            return b64.decode(text.trim()).with_context(|| format!("{} is not base64", path.display()));
        }
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| anyhow::anyhow!("no randomness for a new key"))?;
        // Private from the first byte; if another process created the
        // secret meanwhile, that one is the secret.
        if !crate::keyfile::create(path, b64.encode(key).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?
        {
            return Self::secret(path);
        }
        Ok(key.to_vec())
    }
}
