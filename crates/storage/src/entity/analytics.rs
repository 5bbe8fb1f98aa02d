//! Tables analytics owns: KPI facts per case, the day tallies and the
//! month tallies.
//! Which other services may read them: ADR 0002.

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

pub mod kpi_month_cell {
    //! One jurisdiction's KPI tally for one calendar month (China time): the
    //! sum of its day cells in that month, kept by the same fold in the same
    //! transaction. It exists exactly when one of those day cells does.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "kpi_month_cells")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jurisdiction: String,
        /// YYYY-MM.
        #[sea_orm(primary_key, auto_increment = false)]
        pub month: String,
        /// The sum of the month's day cells' `net_open`.
        pub net_open: i64,
        /// `gridwork_domain::kpi::Tally` as JSON: the sum of the day cells' tallies.
        #[sea_orm(column_type = "Text")]
        pub tally: String,
    }
    no_relations!();
}
