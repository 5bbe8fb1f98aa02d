//! Migrations: one set for SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_init::Migration),
            Box::new(m20261122_000002_revoked_tokens::Migration),
            Box::new(m20261122_000003_grid_versions::Migration),
            Box::new(m20261122_000004_queues::Migration),
            Box::new(m20261122_000005_pii::Migration),
            Box::new(m20261122_000006_kpi_cells::Migration),
            Box::new(m20261122_000007_refresh_tokens::Migration),
            Box::new(m20261122_000008_device_time::Migration),
            Box::new(m20261122_000009_media::Migration),
            Box::new(m20261122_000010_api_keys::Migration),
            Box::new(m20261122_000011_tasks::Migration),
            Box::new(m20261122_000012_media_access_users::Migration),
            Box::new(m20261206_000001_sealed_statements::Migration),
            Box::new(m20261207_000001_reports_by_case::Migration),
            Box::new(m20261207_000002_kpi_month_cells::Migration),
        ]
    }
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn text(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.string().not_null();
    c
}
fn long_text(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.text().not_null();
    c
}
fn text_null(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.string().null();
    c
}
fn ts(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.timestamp_with_time_zone().not_null();
    c
}
fn ts_null(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.timestamp_with_time_zone().null();
    c
}
fn int(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.integer().not_null();
    c
}
fn big(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.big_integer().not_null();
    c
}
fn float(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.double().not_null();
    c
}
fn text_pk(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.string().not_null().primary_key();
    c
}
fn serial_pk(name: &str) -> ColumnDef {
    let mut c = ColumnDef::new(a(name));
    c.big_integer().not_null().auto_increment().primary_key();
    c
}

fn table(name: &str, cols: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(a(name)).if_not_exists();
    for mut c in cols {
        t.col(&mut c);
    }
    t.to_owned()
}

fn index(table: &str, name: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(a(table)).if_not_exists();
    for c in cols {
        i.col(a(c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

mod m20261122_000001_init {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000001_init"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let tables = vec![
                table(
                    "units",
                    vec![text_pk("code"), text("name"), text("level"), text_null("parent"), {
                        let mut c = ColumnDef::new(a("geometry"));
                        c.text().null();
                        c
                    }],
                ),
                table(
                    "grids",
                    vec![
                        text_pk("code"),
                        text("name"),
                        text("community"),
                        text("centre"),
                        long_text("geometry"),
                        ts("valid_from"),
                        ts_null("valid_to"),
                    ],
                ),
                table("centres", vec![text_pk("code"), text("name"), text("level"), text_null("parent")]),
                table(
                    "categories",
                    vec![
                        text_pk("code"),
                        text("name_zh"),
                        text("name_en"),
                        {
                            let mut c = ColumnDef::new(a("petition"));
                            c.boolean().not_null();
                            c
                        },
                        int("taxonomy_version"),
                    ],
                ),
                table(
                    "routing_tables",
                    vec![
                        {
                            let mut c = ColumnDef::new(a("version"));
                            c.integer().not_null().primary_key();
                            c
                        },
                        long_text("body"),
                        ts("created_at"),
                    ],
                ),
                table(
                    "users",
                    vec![
                        text_pk("id"),
                        text("username"),
                        text("password_hash"),
                        text("role"),
                        text("scope"),
                        text("display_name"),
                    ],
                ),
                table(
                    "reports",
                    vec![
                        text_pk("id"),
                        text("reporter"),
                        ts("occurred_at"),
                        ts("received_at"),
                        float("lat"),
                        float("lon"),
                        {
                            let mut c = ColumnDef::new(a("accuracy_m"));
                            c.double().null();
                            c
                        },
                        text("crs"),
                        text_null("address"),
                        text("category"),
                        long_text("description"),
                        text("urgency"),
                        long_text("parties"),
                        text_null("matter"),
                        text("body_hash"),
                        text("status"),
                        text_null("grid"),
                        text_null("centre"),
                        text_null("case_id"),
                        big("case_version"),
                        ts("updated_at"),
                    ],
                ),
                table(
                    "report_events",
                    vec![serial_pk("id"), text("report_id"), ts("at"), text("status"), long_text("note")],
                ),
                table(
                    "cases",
                    vec![
                        text_pk("id"),
                        text("report_id"),
                        text("centre"),
                        text("channel"),
                        int("priority"),
                        text("category"),
                        text("urgency"),
                        text("grid"),
                        text("community"),
                        text("street"),
                        text("county"),
                        text("city"),
                        text("province"),
                        text("status"),
                        text_null("claimed_by"),
                        ts_null("lease_until"),
                        text_null("outcome"),
                        text_null("satisfaction"),
                        text_null("petitioner_key"),
                        text_null("matter_key"),
                        text_null("petition_class"),
                        text("routing_rule"),
                        ts("created_at"),
                        ts("due_at"),
                        ts("updated_at"),
                        big("version"),
                    ],
                ),
                table(
                    "case_events",
                    vec![
                        serial_pk("id"),
                        text("event_id"),
                        text("case_id"),
                        text("kind"),
                        text("status"),
                        text("actor_id"),
                        text("actor_role"),
                        long_text("reason"),
                        ts("at"),
                        big("version"),
                    ],
                ),
                table(
                    "outbox",
                    vec![
                        serial_pk("id"),
                        text("producer"),
                        text("topic"),
                        {
                            let mut c = ColumnDef::new(a("msg_key"));
                            c.binary().not_null();
                            c
                        },
                        {
                            let mut c = ColumnDef::new(a("payload"));
                            c.binary().not_null();
                            c
                        },
                        ts("created_at"),
                        ts_null("sent_at"),
                    ],
                ),
                {
                    let mut t = table("consumed_events", vec![text("consumer"), text("event_id"), ts("consumed_at")]);
                    t.primary_key(Index::create().col(a("consumer")).col(a("event_id")));
                    t
                },
                table(
                    "kpi_case_facts",
                    vec![
                        text_pk("case_id"),
                        text("place"),
                        ts("created_at"),
                        ts_null("closed_at"),
                        text_null("petitioner_key"),
                        text_null("matter_key"),
                        big("version"),
                        long_text("facts"),
                    ],
                ),
            ];
            for t in tables {
                m.create_table(t).await?;
            }
            for i in [
                index("users", "ux_users_username", &["username"], true),
                index("grids", "ix_grids_community", &["community"], false),
                index("reports", "ix_reports_reporter", &["reporter", "received_at"], false),
                index("report_events", "ix_report_events_report", &["report_id", "id"], false),
                index("cases", "ux_cases_report", &["report_id"], true),
                index("cases", "ix_cases_queue", &["centre", "channel", "status", "priority"], false),
                index("cases", "ix_cases_petition", &["petitioner_key", "matter_key"], false),
                index("case_events", "ux_case_events_event", &["event_id"], true),
                index("case_events", "ix_case_events_case", &["case_id", "id"], false),
                index("outbox", "ix_outbox_pending", &["producer", "sent_at", "id"], false),
                index("kpi_case_facts", "ix_kpi_place_created", &["place", "created_at"], false),
                index("kpi_case_facts", "ix_kpi_place_closed", &["place", "closed_at"], false),
                index("kpi_case_facts", "ix_kpi_petition", &["petitioner_key", "matter_key"], false),
            ] {
                m.create_index(i).await?;
            }
            Ok(())
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            for t in [
                "kpi_case_facts",
                "consumed_events",
                "outbox",
                "case_events",
                "cases",
                "report_events",
                "reports",
                "users",
                "routing_tables",
                "categories",
                "centres",
                "grids",
                "units",
            ] {
                m.drop_table(Table::drop().table(a(t)).if_exists().to_owned()).await?;
            }
            Ok(())
        }
    }
}

mod m20261122_000002_revoked_tokens {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000002_revoked_tokens"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "revoked_tokens",
                vec![text_pk("jti"), ts("expires_at"), ts("revoked_at"), text("revoked_by")],
            ))
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("revoked_tokens")).if_exists().to_owned()).await
        }
    }
}

/// Grids become versioned: `grid_versions` (one row per import, valid from a
/// time, covering a set of counties) and `grid_shapes` (the grids of each
/// version). The grids of the old `grids` table become version 1.
mod m20261122_000003_grid_versions {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000003_grid_versions"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "grid_versions",
                vec![
                    serial_pk("id"),
                    text("label"),
                    ts("valid_from"),
                    ts("created_at"),
                    long_text("counties"),
                    big("grids"),
                    text("source"),
                    text("created_by"),
                ],
            ))
            .await?;
            let mut shapes = table(
                "grid_shapes",
                vec![
                    big("version_id"),
                    text("code"),
                    text("name"),
                    text("community"),
                    text("centre"),
                    long_text("geometry"),
                ],
            );
            shapes.primary_key(Index::create().col(a("version_id")).col(a("code")));
            m.create_table(shapes).await?;
            m.create_index(index("grid_versions", "ix_grid_versions_valid_from", &["valid_from", "id"], false)).await?;
            // Carry the grids of the unversioned table over as version 1.
            let db = m.get_connection();
            let backend = db.get_database_backend();
            let counties: Vec<String> = db
                .query_all(Statement::from_string(
                    backend,
                    "SELECT DISTINCT substr(code, 1, 6) AS county FROM grids ORDER BY 1",
                ))
                .await?
                .iter()
                .map(|r| r.try_get::<String>("", "county"))
                .collect::<Result<_, _>>()?;
            if !counties.is_empty() {
                let stmt = Statement::from_sql_and_values(
                    backend,
                    match backend {
                        sea_orm::DatabaseBackend::Postgres => {
                            "INSERT INTO grid_versions (id, label, valid_from, created_at, counties, grids, source, created_by) \
                             SELECT 1, 'initial', MIN(valid_from), MIN(valid_from), $1, COUNT(*), 'grids table', 'migration' FROM grids"
                        }
                        _ => {
                            "INSERT INTO grid_versions (id, label, valid_from, created_at, counties, grids, source, created_by) \
                             SELECT 1, 'initial', MIN(valid_from), MIN(valid_from), ?, COUNT(*), 'grids table', 'migration' FROM grids"
                        }
                    },
                    [counties.join(",").into()],
                );
                db.execute(stmt).await?;
                if backend == sea_orm::DatabaseBackend::Postgres {
                    db.execute_unprepared("SELECT setval(pg_get_serial_sequence('grid_versions', 'id'), 1)").await?;
                }
                db.execute_unprepared(
                    "INSERT INTO grid_shapes (version_id, code, name, community, centre, geometry) \
                     SELECT 1, code, name, community, centre, geometry FROM grids",
                )
                .await?;
            }
            m.drop_table(Table::drop().table(a("grids")).to_owned()).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "grids",
                vec![
                    text_pk("code"),
                    text("name"),
                    text("community"),
                    text("centre"),
                    long_text("geometry"),
                    ts("valid_from"),
                    ts_null("valid_to"),
                ],
            ))
            .await?;
            m.drop_table(Table::drop().table(a("grid_shapes")).if_exists().to_owned()).await?;
            m.drop_table(Table::drop().table(a("grid_versions")).if_exists().to_owned()).await
        }
    }
}

/// The full case lifecycle and the dispatcher's API: joint handling,
/// suspension, petition clocks, the location and time of a case (to link
/// duplicate reports), linked reports, supervision notices raised exactly
/// once, the queue of each lifecycle event (for live-stream resume), and a
/// mediator's channel.
mod m20261122_000004_queues {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000004_queues"
        }
    }

    fn text_default(name: &str) -> ColumnDef {
        let mut c = ColumnDef::new(a(name));
        c.string().not_null().default("");
        c
    }
    fn float_null(name: &str) -> ColumnDef {
        let mut c = ColumnDef::new(a(name));
        c.double().null();
        c
    }

    async fn add(m: &SchemaManager<'_>, table: &str, mut col: ColumnDef) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        m.alter_table(Table::alter().table(a(table)).add_column(&mut col).to_owned()).await
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let mut extended = ColumnDef::new(a("extended"));
            extended.boolean().not_null().default(false);
            for col in [
                text_default("joint"),
                text_null("suspended_from"),
                ts_null("suspended_at"),
                ts_null("accept_due_at"),
                ts_null("near_due_at"),
                ts_null("accept_near_due_at"),
                extended,
                float_null("lat"),
                float_null("lon"),
                ts_null("occurred_at"),
                text_default("search"),
            ] {
                add(m, "cases", col).await?;
            }
            // Cases opened before this migration are near due when due.
            m.get_connection().execute_unprepared("UPDATE cases SET near_due_at = due_at").await?;
            add(m, "case_events", text_default("centre")).await?;
            add(m, "case_events", text_default("channel")).await?;
            add(m, "users", text_null("channel")).await?;
            m.create_table(table(
                "case_reports",
                vec![
                    text_pk("report_id"),
                    text("case_id"),
                    ts("linked_at"),
                    text("linked_by"),
                    float("distance_m"),
                    text_null("split_case_id"),
                ],
            ))
            .await?;
            let mut sup = table(
                "supervisions",
                vec![
                    text("case_id"),
                    text("clock"),
                    text("threshold"),
                    ts("due_at"),
                    ts("raised_at"),
                    text("event_id"),
                ],
            );
            sup.primary_key(Index::create().col(a("case_id")).col(a("clock")).col(a("threshold")).col(a("due_at")));
            m.create_table(sup).await?;
            for i in [
                index("case_reports", "ix_case_reports_case", &["case_id"], false),
                index("case_events", "ix_case_events_centre", &["centre", "id"], false),
                index("cases", "ix_cases_due", &["status", "due_at"], false),
                index("cases", "ix_cases_near_due", &["status", "near_due_at"], false),
                index("cases", "ix_cases_grid", &["grid", "category", "status"], false),
            ] {
                m.create_index(i).await?;
            }
            Ok(())
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("supervisions")).if_exists().to_owned()).await?;
            m.drop_table(Table::drop().table(a("case_reports")).if_exists().to_owned()).await?;
            for (t, cols) in [
                (
                    "cases",
                    &[
                        "joint",
                        "suspended_from",
                        "suspended_at",
                        "accept_due_at",
                        "near_due_at",
                        "accept_near_due_at",
                        "extended",
                        "lat",
                        "lon",
                        "occurred_at",
                        "search",
                    ][..],
                ),
                ("case_events", &["centre", "channel"][..]),
                ("users", &["channel"][..]),
            ] {
                for c in cols {
                    m.alter_table(Table::alter().table(a(t)).drop_column(a(c)).to_owned()).await?;
                }
            }
            Ok(())
        }
    }
}

/// Personal information at rest: reports keep their party count in a column
/// (the parties themselves are sealed, see `gridwork_platform::pii`), and
/// every read of personal information is audited in `pii_reads`.
mod m20261122_000005_pii {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000005_pii"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let mut count = ColumnDef::new(a("party_count"));
            count.integer().not_null().default(0);
            m.alter_table(Table::alter().table(a("reports")).add_column(&mut count).to_owned()).await?;
            m.create_table(table(
                "pii_reads",
                vec![
                    serial_pk("id"),
                    text("actor_id"),
                    text("actor_role"),
                    text("case_id"),
                    long_text("report_ids"),
                    long_text("reason"),
                    ts("at"),
                ],
            ))
            .await?;
            m.create_index(index("pii_reads", "ix_pii_reads_case", &["case_id", "id"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("pii_reads")).if_exists().to_owned()).await?;
            m.alter_table(Table::alter().table(a("reports")).drop_column(a("party_count")).to_owned()).await
        }
    }
}

/// Incremental KPI aggregates: one tally per jurisdiction (community and
/// above) and day, kept up to date by difference as case facts change; and
/// when each pending first-contact result becomes final.
mod m20261122_000006_kpi_cells {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000006_kpi_cells"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let mut t = table(
                "kpi_cells",
                vec![text("jurisdiction"), text("day"), big("net_open"), long_text("tally"), big("version"), {
                    let mut c = ColumnDef::new(a("dirty"));
                    c.boolean().not_null().default(true);
                    c
                }],
            );
            t.primary_key(Index::create().col(a("jurisdiction")).col(a("day")));
            m.create_table(t).await?;
            m.create_index(index("kpi_cells", "ix_kpi_cells_dirty", &["dirty"], false)).await?;
            let mut matures = ts_null("matures_at");
            m.alter_table(Table::alter().table(a("kpi_case_facts")).add_column(&mut matures).to_owned()).await?;
            m.create_index(index("kpi_case_facts", "ix_kpi_matures", &["matures_at"], false)).await?;
            // Ledgers read a jurisdiction's cases by creation time.
            m.create_index(index("kpi_case_facts", "ix_kpi_created", &["created_at"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("kpi_cells")).if_exists().to_owned()).await?;
            m.alter_table(Table::alter().table(a("kpi_case_facts")).drop_column(a("matures_at")).to_owned()).await
        }
    }
}

/// Refresh tokens, stored hashed: each is spent on use; a family is every
/// token descended from one sign-in, revoked whole when a spent one is used
/// again.
mod m20261122_000007_refresh_tokens {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000007_refresh_tokens"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "refresh_tokens",
                vec![
                    text_pk("token_hash"),
                    text("family"),
                    text("user_id"),
                    ts("issued_at"),
                    ts("expires_at"),
                    ts_null("used_at"),
                    ts_null("revoked_at"),
                    text("access_jti"),
                    ts("access_expires_at"),
                ],
            ))
            .await?;
            m.create_index(index("refresh_tokens", "ix_refresh_family", &["family"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("refresh_tokens")).if_exists().to_owned()).await
        }
    }
}

/// Reports keep the phone's own time of queueing beside the server's.
mod m20261122_000008_device_time {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000008_device_time"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let mut c = ts_null("device_time");
            m.alter_table(Table::alter().table(a("reports")).add_column(&mut c).to_owned()).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.alter_table(Table::alter().table(a("reports")).drop_column(a("device_time")).to_owned()).await
        }
    }
}

/// Photos and videos, by content hash; reports name the media they show.
mod m20261122_000009_media {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000009_media"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "media",
                vec![text_pk("id"), text("content_type"), big("size"), text("uploaded_by"), ts("uploaded_at")],
            ))
            .await?;
            let mut c = ColumnDef::new(a("media"));
            c.text().null();
            m.alter_table(Table::alter().table(a("reports")).add_column(&mut c).to_owned()).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("media")).if_exists().to_owned()).await?;
            m.alter_table(Table::alter().table(a("reports")).drop_column(a("media")).to_owned()).await
        }
    }
}

/// API keys of Open311 integrations, stored hashed (ADR 0020), and which
/// key submitted which report (what `/open311/v2/` may show).
mod m20261122_000010_api_keys {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000010_api_keys"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "api_keys",
                vec![
                    text_pk("id"),
                    text("name"),
                    text("key_hash"),
                    text("key_prefix"),
                    text("reporter"),
                    text("area"),
                    long_text("categories"),
                    ts("created_at"),
                    text("created_by"),
                    ts_null("revoked_at"),
                ],
            ))
            .await?;
            m.create_index(index("api_keys", "ux_api_keys_hash", &["key_hash"], true)).await?;
            m.create_table(table("api_key_reports", vec![text_pk("report_id"), text("key_id"), ts("created_at")]))
                .await?;
            m.create_index(index("api_key_reports", "ix_api_key_reports_key", &["key_id", "created_at"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("api_key_reports")).if_exists().to_owned()).await?;
            m.drop_table(Table::drop().table(a("api_keys")).if_exists().to_owned()).await
        }
    }
}

/// Tasks a case worker assigns to grid workers (核查, 回访, 送达, 协助调解),
/// kept beside the case's lifecycle (ADR 0021).
mod m20261122_000011_tasks {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000011_tasks"
        }
    }

    fn long_text_null(name: &str) -> ColumnDef {
        let mut c = ColumnDef::new(a(name));
        c.text().null();
        c
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(table(
                "tasks",
                vec![
                    text_pk("id"),
                    text("case_id"),
                    text("grid"),
                    text("kind"),
                    long_text("instructions"),
                    ts("due_at"),
                    text_null("assignee"),
                    text("status"),
                    text("created_by"),
                    ts("created_at"),
                    ts_null("acked_at"),
                    ts_null("done_at"),
                    long_text_null("note"),
                    long_text_null("media"),
                    ts_null("cancelled_at"),
                    text_null("cancelled_by"),
                    long_text_null("cancel_reason"),
                    ts("updated_at"),
                ],
            ))
            .await?;
            for i in [
                index("tasks", "ix_tasks_case", &["case_id", "created_at"], false),
                index("tasks", "ix_tasks_assignee", &["assignee", "status"], false),
                index("tasks", "ix_tasks_grid", &["grid", "status"], false),
            ] {
                m.create_index(i).await?;
            }
            Ok(())
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("tasks")).if_exists().to_owned()).await
        }
    }
}

/// Who may see a medium (ADR 0024): every uploader of its bytes, and which
/// reports and tasks name it (indexed, where the JSON columns are not); a
/// user can be deactivated (ADR 0025), and a refresh token is found by the
/// access token issued with it (log-out revokes the family).
mod m20261122_000012_media_access_users {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261122_000012_media_access_users"
        }
    }

    /// A table of two text columns keyed on both, with an index on the second.
    async fn pair(
        m: &SchemaManager<'_>,
        name: &str,
        first: &str,
        second: &str,
        extra: Vec<ColumnDef>,
    ) -> Result<(), DbErr> {
        let mut t = table(name, [text(first), text(second)].into_iter().chain(extra).collect());
        t.primary_key(Index::create().col(a(first)).col(a(second)));
        m.create_table(t).await?;
        m.create_index(index(name, &format!("ix_{name}_{second}"), &[second], false)).await
    }

    /// `(owner id, JSON array of media ids)` rows of `sql`, as (media, owner) pairs.
    async fn named(m: &SchemaManager<'_>, sql: &str) -> Result<Vec<(String, String)>, DbErr> {
        let db = m.get_connection();
        let rows = db.query_all(Statement::from_string(db.get_database_backend(), sql.to_owned())).await?;
        let mut out = Vec::new();
        for row in rows {
            let owner: String = row.try_get_by_index(0)?;
            let media: Option<String> = row.try_get_by_index(1)?;
            let ids: Vec<String> = media.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
            out.extend(ids.into_iter().map(|id| (id, owner.clone())));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn fill(
        m: &SchemaManager<'_>,
        table: &str,
        cols: [&str; 2],
        rows: Vec<(String, String)>,
    ) -> Result<(), DbErr> {
        for chunk in rows.chunks(500) {
            let mut q = Query::insert();
            q.into_table(a(table)).columns([a(cols[0]), a(cols[1])]);
            for (media, owner) in chunk {
                q.values([media.clone().into(), owner.clone().into()]).map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            q.on_conflict(OnConflict::columns([a(cols[0]), a(cols[1])]).do_nothing().to_owned());
            m.exec_stmt(q.to_owned()).await?;
        }
        Ok(())
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            pair(m, "media_uploads", "media_id", "user_id", vec![ts("uploaded_at")]).await?;
            pair(m, "report_media", "media_id", "report_id", Vec::new()).await?;
            pair(m, "task_media", "media_id", "task_id", Vec::new()).await?;
            let db = m.get_connection();
            db.execute_unprepared(
                "INSERT INTO media_uploads (media_id, user_id, uploaded_at) SELECT id, uploaded_by, uploaded_at FROM media",
            )
            .await?;
            let reports = named(m, "SELECT id, media FROM reports WHERE media IS NOT NULL").await?;
            fill(m, "report_media", ["media_id", "report_id"], reports).await?;
            let tasks = named(m, "SELECT id, media FROM tasks WHERE media IS NOT NULL").await?;
            fill(m, "task_media", ["media_id", "task_id"], tasks).await?;
            let mut c = ColumnDef::new(a("deactivated_at"));
            c.timestamp_with_time_zone().null();
            m.alter_table(Table::alter().table(a("users")).add_column(&mut c).to_owned()).await?;
            m.create_index(index("refresh_tokens", "ix_refresh_access_jti", &["access_jti"], false)).await?;
            m.create_index(index("refresh_tokens", "ix_refresh_user", &["user_id"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            for t in ["media_uploads", "report_media", "task_media"] {
                m.drop_table(Table::drop().table(a(t)).if_exists().to_owned()).await?;
            }
            m.drop_index(Index::drop().name("ix_refresh_access_jti").table(a("refresh_tokens")).to_owned()).await?;
            m.drop_index(Index::drop().name("ix_refresh_user").table(a("refresh_tokens")).to_owned()).await?;
            m.alter_table(Table::alter().table(a("users")).drop_column(a("deactivated_at")).to_owned()).await
        }
    }
}

/// People's words given with case actions and on-the-spot resolutions can
/// name people: kept sealed (like parties and matters) beside the event or
/// report, and never published (ADR 0028).
mod m20261206_000001_sealed_statements {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261206_000001_sealed_statements"
        }
    }

    fn sealed(name: &str) -> ColumnDef {
        let mut c = ColumnDef::new(a(name));
        c.text().null();
        c
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.alter_table(Table::alter().table(a("case_events")).add_column(sealed("statement")).to_owned()).await?;
            m.alter_table(Table::alter().table(a("reports")).add_column(sealed("on_spot_note")).to_owned()).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.alter_table(Table::alter().table(a("case_events")).drop_column(a("statement")).to_owned()).await?;
            m.alter_table(Table::alter().table(a("reports")).drop_column(a("on_spot_note")).to_owned()).await
        }
    }
}

/// intake's status follower updates every report of a case on each of the
/// case's lifecycle events (`UPDATE reports … WHERE case_id = …`): without
/// an index that is a scan of every report, 151 ms per event at 60,000
/// reports, and intake's consumer fell 50,000 events behind in the fault
/// suite at 50 reports/s.
mod m20261207_000001_reports_by_case {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261207_000001_reports_by_case"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_index(index("reports", "ix_reports_case", &["case_id"], false)).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_index(Index::drop().name("ix_reports_case").table(a("reports")).to_owned()).await
        }
    }
}

/// Month tallies (issue 17): one per jurisdiction and calendar month, the
/// sum of that month's day cells, so a query by month, quarter or year reads
/// whole months from here and only the partial months at its ends from
/// `kpi_cells`. Existing day cells are summed into month cells here, once.
mod m20261207_000002_kpi_month_cells {
    use super::*;
    use crate::entity::{kpi_cell, kpi_month_cell};
    use gridwork_domain::kpi::Tally;
    use sea_orm::{
        ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
        QueryOrder, QuerySelect,
    };

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261207_000002_kpi_month_cells"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            let mut t = table(
                "kpi_month_cells",
                vec![text("jurisdiction"), text("month"), big("net_open"), long_text("tally")],
            );
            t.primary_key(Index::create().col(a("jurisdiction")).col(a("month")));
            m.create_table(t).await?;
            backfill(m.get_connection()).await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table(a("kpi_month_cells")).if_exists().to_owned()).await
        }
    }

    /// Sums the existing day cells into month cells, reading them in key
    /// order a page at a time.
    async fn backfill<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
        let mut after: Option<(String, String)> = None;
        let mut current: Option<(String, String, i64, Tally)> = None;
        loop {
            let mut q = kpi_cell::Entity::find()
                .order_by_asc(kpi_cell::Column::Jurisdiction)
                .order_by_asc(kpi_cell::Column::Day)
                .limit(5000);
            if let Some((j, d)) = &after {
                q = q.filter(
                    Condition::any().add(kpi_cell::Column::Jurisdiction.gt(j.as_str())).add(
                        Condition::all()
                            .add(kpi_cell::Column::Jurisdiction.eq(j.as_str()))
                            .add(kpi_cell::Column::Day.gt(d.as_str())),
                    ),
                );
            }
            let rows = q.all(db).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.jurisdiction.clone(), last.day.clone()));
            for c in rows {
                let month = c.day.get(..7).unwrap_or(&c.day).to_owned();
                let tally: Tally = serde_json::from_str(&c.tally)
                    .map_err(|e| DbErr::Custom(format!("tally of {} on {}: {e}", c.jurisdiction, c.day)))?;
                match &mut current {
                    Some((j, mo, net, t)) if *j == c.jurisdiction && *mo == month => {
                        *net += c.net_open;
                        t.add(&tally, 1);
                    }
                    _ => {
                        if let Some(done) = current.take() {
                            write(db, done).await?;
                        }
                        current = Some((c.jurisdiction, month, c.net_open, tally));
                    }
                }
            }
        }
        if let Some(done) = current.take() {
            write(db, done).await?;
        }
        Ok(())
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        (jurisdiction, month, net_open, t): (String, String, i64, Tally),
    ) -> Result<(), DbErr> {
        let tally = serde_json::to_string(&t).map_err(|e| DbErr::Custom(e.to_string()))?;
        kpi_month_cell::Model { jurisdiction, month, net_open, tally }
            .into_active_model()
            .reset_all()
            .insert(db)
            .await?;
        Ok(())
    }
}
