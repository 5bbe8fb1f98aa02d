//! Tables mediation owns: cases, their events, links, supervision, routing, tasks, PII reads.
//! Which other services may read them: ADR 0002.

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
