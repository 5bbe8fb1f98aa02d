//! sea-orm entities, one module per owning service (ADR 0002: the owner is
//! the only writer; the reads that cross are listed there and checked by
//! `scripts/table-ownership.py`). Database types stay in this crate and the
//! services' repositories; the domain never sees them. Every entity is also
//! re-exported here (`entity::report`), as before the split.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod intake;
pub mod assigner;
pub mod mediation;
pub mod analytics;
pub mod platform;
pub mod shared;

pub use intake::{user, report, report_event, media, media_upload, report_media, refresh_token, api_key, api_key_report};
pub use assigner::{unit, grid_version, grid_shape, centre, category};
pub use mediation::{routing_table, case, case_event, task_media, case_report, supervision, pii_read, task};
pub use analytics::{kpi_fact, kpi_cell};
pub use platform::{revoked_token};
pub use shared::{outbox, consumed_event};
