//! Tables the assigner owns: the grid registry and the reference data (units, centres, categories).
//! Which other services may read them: ADR 0002.

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
