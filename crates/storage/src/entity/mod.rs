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

pub mod analytics;
pub mod assigner;
pub mod intake;
pub mod mediation;
pub mod platform;
pub mod shared;

pub use analytics::{kpi_cell, kpi_fact, kpi_month_cell};
pub use assigner::{category, centre, grid_shape, grid_version, unit};
pub use intake::{
    api_key, api_key_report, media, media_upload, refresh_token, report, report_event, report_media, user,
};
pub use mediation::{case, case_event, case_report, pii_read, routing_table, supervision, task, task_media};
pub use platform::revoked_token;
pub use shared::{consumed_event, outbox};
