//! sea-orm entities. Database types stay in this crate and the services'
//! repositories; the domain never sees them.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod unit {
    //! Administrative units above grids: communities, streets, counties, cities.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "units")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
        pub level: String,
        pub parent: Option<String>,
        /// GeoJSON geometry where known (counties).
        #[sea_orm(column_type = "Text", nullable)]
        pub geometry: Option<String>,
    }
    no_relations!();
}

/// One import of grids: valid from a time, for a set of counties.
pub mod grid_version {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grid_versions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub label: String,
        pub valid_from: DateTimeUtc,
        pub created_at: DateTimeUtc,
        /// The county codes this version covers, comma-separated: from
        /// `valid_from` on, their grids are this version's.
        #[sea_orm(column_type = "Text")]
        pub counties: String,
        pub grids: i64,
        pub source: String,
        pub created_by: String,
    }
    no_relations!();

    impl Model {
        pub fn county_list(&self) -> Vec<String> {
            self.counties.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
        }
    }
}

/// A grid of one version.
pub mod grid_shape {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grid_shapes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
        pub community: String,
        pub centre: String,
        /// GeoJSON geometry (WGS-84).
        #[sea_orm(column_type = "Text")]
        pub geometry: String,
    }
    no_relations!();
}

pub mod centre {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "centres")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
        pub level: String,
        /// The centre above (escalation target); none for the top.
        pub parent: Option<String>,
    }
    no_relations!();
}

pub mod category {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "categories")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name_zh: String,
        pub name_en: String,
        pub petition: bool,
        pub taxonomy_version: i32,
    }
    no_relations!();
}

pub mod routing_table {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "routing_tables")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        /// The rules as JSON (`gridwork_domain::routing::RoutingTable`).
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod user {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub username: String,
        pub password_hash: String,
        pub role: String,
        pub scope: String,
        pub display_name: String,
        /// A mediator's channel.
        pub channel: Option<String>,
        /// Set when an admin deactivated the account: it cannot sign in or
        /// refresh, and its tokens were revoked then.
        pub deactivated_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub reporter: String,
        pub occurred_at: DateTimeUtc,
        pub received_at: DateTimeUtc,
        pub lat: f64,
        pub lon: f64,
        pub accuracy_m: Option<f64>,
        pub crs: String,
        pub address: Option<String>,
        pub category: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        pub urgency: String,
        /// Parties as JSON, sealed (envelope encryption, `gwpii1:…`, bound to
        /// the report id). Personal information: never logged, never on
        /// topics, read only through an audited path.
        #[sea_orm(column_type = "Text")]
        pub parties: String,
        pub matter: Option<String>,
        /// SHA-256 of the request body, to tell a replay from a conflicting reuse of the id.
        pub body_hash: String,
        pub status: String,
        pub grid: Option<String>,
        pub centre: Option<String>,
        pub case_id: Option<String>,
        /// The last case version reflected in `status`.
        pub case_version: i64,
        pub updated_at: DateTimeUtc,
        /// How many parties the report names.
        pub party_count: i32,
        /// When the phone queued the report, by the phone's clock (offline
        /// phones send later; `received_at` is the server's time).
        pub device_time: Option<DateTimeUtc>,
        /// The media the report shows: a JSON array of content hashes
        /// (uploaded before or after the report).
        #[sea_orm(column_type = "Text", nullable)]
        pub media: Option<String>,
        /// The grid worker's on-the-spot note (就地化解), sealed like the
        /// matter (it can name people); never on topics.
        #[sea_orm(column_type = "Text", nullable)]
        pub on_spot_note: Option<String>,
    }
    no_relations!();

    impl Model {
        /// How many parties the report names (without exposing them).
        pub fn party_count(&self) -> usize {
            usize::try_from(self.party_count).unwrap_or(0)
        }
    }
}

pub mod report_event {
    //! The timeline a grid worker sees for a report.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub report_id: String,
        pub at: DateTimeUtc,
        pub status: String,
        pub note: String,
    }
    no_relations!();
}

pub mod case {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "cases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub report_id: String,
        pub centre: String,
        pub channel: String,
        pub priority: i32,
        pub category: String,
        pub urgency: String,
        pub grid: String,
        pub community: String,
        pub street: String,
        pub county: String,
        pub city: String,
        pub province: String,
        pub status: String,
        pub claimed_by: Option<String>,
        pub lease_until: Option<DateTimeUtc>,
        pub outcome: Option<String>,
        pub satisfaction: Option<String>,
        pub petitioner_key: Option<String>,
        pub matter_key: Option<String>,
        pub petition_class: Option<String>,
        pub routing_rule: String,
        pub created_at: DateTimeUtc,
        pub due_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub version: i64,
        /// Channels assisting in joint handling, comma-separated.
        pub joint: String,
        pub suspended_from: Option<String>,
        pub suspended_at: Option<DateTimeUtc>,
        pub accept_due_at: Option<DateTimeUtc>,
        /// When near-due supervision fires for each clock.
        pub near_due_at: Option<DateTimeUtc>,
        pub accept_near_due_at: Option<DateTimeUtc>,
        pub extended: bool,
        /// Where and when the first report saw the incident (WGS-84).
        pub lat: Option<f64>,
        pub lon: Option<f64>,
        pub occurred_at: Option<DateTimeUtc>,
        /// Lower-cased text the `text` filter searches: category, address,
        /// description of the first report.
        pub search: String,
    }
    no_relations!();

    impl Model {
        /// The case's channels: its lead, then those assisting.
        pub fn channels(&self) -> impl Iterator<Item = &str> {
            std::iter::once(self.channel.as_str()).chain(self.joint.split(',').filter(|c| !c.is_empty()))
        }
    }
}

pub mod case_event {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "case_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub event_id: String,
        pub case_id: String,
        pub kind: String,
        pub status: String,
        pub actor_id: String,
        pub actor_role: String,
        pub reason: String,
        pub at: DateTimeUtc,
        pub version: i64,
        /// The case's queue after the event (live-stream resume reads these).
        pub centre: String,
        pub channel: String,
        /// The words the actor gave (a reason or a note), sealed with the
        /// keyring for this event's `event_id`; never published.
        pub statement: Option<String>,
    }
    no_relations!();
}

pub mod outbox {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub producer: String,
        pub topic: String,
        pub msg_key: Vec<u8>,
        pub payload: Vec<u8>,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod consumed_event {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consumed_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub consumed_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod kpi_fact {
    //! One row per case: what the KPIs need, folded from lifecycle events.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_case_facts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub case_id: String,
        /// The finest known code of the case's place (grid, or county).
        pub place: String,
        pub created_at: DateTimeUtc,
        pub closed_at: Option<DateTimeUtc>,
        pub petitioner_key: Option<String>,
        pub matter_key: Option<String>,
        /// The last case version folded in (events older than it are ignored).
        pub version: i64,
        /// `gridwork_domain::kpi::CaseFacts` as JSON.
        #[sea_orm(column_type = "Text")]
        pub facts: String,
        /// When a pending first-contact result becomes final.
        pub matures_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod kpi_cell {
    //! One jurisdiction's KPI tally for one day (China time).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_cells")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jurisdiction: String,
        /// YYYY-MM-DD.
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: String,
        /// Cases created minus cases ended that day (the backlog's steps).
        pub net_open: i64,
        /// `gridwork_domain::kpi::Tally` as JSON.
        #[sea_orm(column_type = "Text")]
        pub tally: String,
        /// Bumped on every change.
        pub version: i64,
        /// Changed since its KPI snapshots were last published.
        pub dirty: bool,
    }
    no_relations!();
}

pub mod media {
    //! A photo or video, stored once per content (its SHA-256 is its id).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub content_type: String,
        pub size: i64,
        pub uploaded_by: String,
        pub uploaded_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod media_upload {
    //! Everyone who uploaded a medium's bytes (the first is also
    //! `media.uploaded_by`): each may see it (ADR 0024).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media_uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub uploaded_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod report_media {
    //! Which reports name which media (intake writes it with the report).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
    }
    no_relations!();
}

pub mod task_media {
    //! Which tasks' results name which media (mediation writes it with the
    //! completion).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "task_media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub task_id: String,
    }
    no_relations!();
}

pub mod refresh_token {
    //! Refresh tokens (hashed), each spent on use, grouped in families.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        /// SHA-256 (hex) of the token; the token itself is never stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        /// Every token descended from one sign-in.
        pub family: String,
        pub user_id: String,
        pub issued_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        /// Spent: exchanged for a new pair.
        pub used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        /// The access token issued with it (revoked with the family).
        pub access_jti: String,
        pub access_expires_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod revoked_token {
    //! Tokens revoked before their expiry (the truth behind the cache's fast path).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: DateTimeUtc,
        pub revoked_at: DateTimeUtc,
        pub revoked_by: String,
    }
    no_relations!();
}

/// Further reports of the same incident, linked to an open case.
pub mod case_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "case_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        pub case_id: String,
        pub linked_at: DateTimeUtc,
        pub linked_by: String,
        pub distance_m: f64,
        /// Set when a dispatcher split the report off into a case of its own.
        pub split_case_id: Option<String>,
    }
    no_relations!();
}

/// Supervision notices (督办) raised: one row per case, clock, threshold
/// and deadline, so each is raised exactly once.
pub mod supervision {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "supervisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub case_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub clock: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub threshold: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub due_at: DateTimeUtc,
        pub raised_at: DateTimeUtc,
        pub event_id: String,
    }
    no_relations!();
}

/// Every read of personal information: who, which case, when, why.
pub mod pii_read {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pii_reads")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub actor_id: String,
        pub actor_role: String,
        pub case_id: String,
        /// The reports whose parties were shown, comma-separated.
        pub report_ids: String,
        pub reason: String,
        pub at: DateTimeUtc,
    }
    no_relations!();
}

/// An Open311 integration's API key (ADR 0020): only its SHA-256 is kept.
pub mod api_key {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        /// Public id (`ak_…`), what `gridwork apikey revoke` takes.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The integration it was issued to.
        pub name: String,
        /// SHA-256 (hex) of the key; the key itself is shown once, at issue.
        #[sea_orm(unique)]
        pub key_hash: String,
        /// The key's first characters, to tell keys apart in listings.
        pub key_prefix: String,
        /// The user id reports made with the key are recorded as reported by.
        pub reporter: String,
        /// Administrative code (province, city or county) the key may report
        /// into; "" = anywhere gridwork serves.
        pub area: String,
        /// Category codes or dotted prefixes the key may report,
        /// comma-separated; "" = every category Open311 offers.
        #[sea_orm(column_type = "Text")]
        pub categories: String,
        pub created_at: DateTimeUtc,
        pub created_by: String,
        pub revoked_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

/// Which API key submitted which report: the reports `/open311/v2/` shows.
pub mod api_key_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_key_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        pub key_id: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

/// A task a case worker gave the grid worker(s) of a case's grid: verify on
/// site (核查), visit again (回访), deliver a notice (送达), assist a
/// mediation (协助调解). Beside the case's lifecycle, not in it (ADR 0021).
pub mod task {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub case_id: String,
        /// The case's grid when the task was given (its county when the case
        /// has no grid).
        pub grid: String,
        /// `verification`, `follow_up`, `delivery` or `assist_mediation`.
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub instructions: String,
        pub due_at: DateTimeUtc,
        /// The grid worker (user id); `None`: any grid worker of `grid`, until
        /// one acknowledges or completes it.
        pub assignee: Option<String>,
        /// `assigned`, `acknowledged`, `done` or `cancelled`.
        pub status: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub acked_at: Option<DateTimeUtc>,
        pub done_at: Option<DateTimeUtc>,
        /// The worker's result note.
        #[sea_orm(column_type = "Text", nullable)]
        pub note: Option<String>,
        /// Media of the result: a JSON array of content hashes.
        #[sea_orm(column_type = "Text", nullable)]
        pub media: Option<String>,
        pub cancelled_at: Option<DateTimeUtc>,
        /// A case worker's id, or `system` when the case was closed or rejected.
        pub cancelled_by: Option<String>,
        #[sea_orm(column_type = "Text", nullable)]
        pub cancel_reason: Option<String>,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}
