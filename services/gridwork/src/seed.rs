//! The demo city: Weihai (威海), seeded on first start from the files in
//! `data/` (compiled in, so `gridwork up` needs nothing outside the clone).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{TimeZone, Utc};
use gridwork_domain::routing::{RoutingTable, Taxonomy};
use gridwork_geoindex::geojson_io::{self, geometry_to_string};
use gridwork_geoindex::synth::{self, SynthParams};
use gridwork_geoindex::{Area, GridIndex, Located};
use gridwork_storage::entity::{category, centre, grid_version, routing_table, unit, user};
use gridwork_storage::grids::{GridRow, NewVersion};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

pub const BOUNDARIES: &str = include_str!("../../../data/weihai-boundaries.geojson");
pub const CATEGORIES: &str = include_str!("../../../data/categories.json");
pub const ROUTING: &str = include_str!("../../../data/routing-rules.json");

/// How many grids the demo city gets, shared among its counties by area.
pub const DEMO_GRIDS: usize = 439;
pub const SEED: u64 = 20_261_122;
/// Weihai city centre (环翠区), WGS-84: the demo grid worker's grid contains it.
pub const DEMO_POINT: (f64, f64) = (37.5095, 122.1150);
pub const DEMO_PASSWORD: &str = "gridwork-demo";

/// What was seeded, for the start-up banner.
#[derive(Debug, Clone)]
pub struct Demo {
    pub city: String,
    pub counties: usize,
    pub streets: usize,
    pub communities: usize,
    pub grids: usize,
    /// (username, role, scope)
    /// (user, role, scope, channel): ready to sign in with [`DEMO_PASSWORD`].
    pub users: Vec<(String, String, String, Option<String>)>,
    pub demo_grid: String,
    pub demo_centre: String,
    pub demo_point: (f64, f64),
}

fn hash(password: &str, salt: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(salt.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("{e}"))?.to_string())
}

/// Seeds the demo city if the database has no grids; returns what is there.
pub async fn seed_if_empty(db: &DatabaseConnection) -> anyhow::Result<Demo> {
    let boundaries = geojson_io::parse_boundaries(BOUNDARIES)?;
    let city = boundaries.iter().find(|b| b.level == "city").ok_or_else(|| anyhow::anyhow!("no city in demo data"))?;
    let counties: Vec<_> = boundaries.iter().filter(|b| b.level == "county").cloned().collect();
    let params = SynthParams { grids_per_community: 4, communities_per_street: 3, seed: SEED };
    let all = synth::partition_counties(&counties, DEMO_GRIDS, params)?;
    let index = GridIndex::new(
        all.iter().map(|g| Area { code: g.code.clone(), geometry: g.geometry.clone() }).collect(),
        vec![],
        0.0,
    )?;
    let demo_grid = match index.locate(DEMO_POINT.1, DEMO_POINT.0) {
        Located::Inside { grid } => grid,
        _ => all.first().map(|g| g.code.clone()).ok_or_else(|| anyhow::anyhow!("no grids synthesised"))?,
    };
    let demo_point = if let Located::Inside { .. } = index.locate(DEMO_POINT.1, DEMO_POINT.0) {
        DEMO_POINT
    } else {
        index.interior_point(&demo_grid).map(|(lon, lat)| (lat, lon)).unwrap_or(DEMO_POINT)
    };
    let demo_centre = demo_grid[..9].to_owned();
    let users = vec![
        ("worker-1".to_owned(), "grid_worker".to_owned(), demo_grid.clone(), None),
        ("dispatcher-1".to_owned(), "dispatcher".to_owned(), demo_centre.clone(), None),
        ("mediator-1".to_owned(), "mediator".to_owned(), demo_centre.clone(), Some("people_mediation".to_owned())),
        ("county-dispatcher-1".to_owned(), "dispatcher".to_owned(), demo_grid[..6].to_owned(), None),
        ("analyst-1".to_owned(), "analyst".to_owned(), city.adcode.clone(), None),
        ("admin".to_owned(), "admin".to_owned(), String::new(), None),
    ];
    let mut streets = std::collections::BTreeMap::new();
    let mut communities = std::collections::BTreeMap::new();
    for g in &all {
        streets.insert(g.street.clone(), (g.street_name.clone(), g.county.clone()));
        communities.insert(g.community.clone(), (g.community_name.clone(), g.street.clone()));
    }
    let demo = Demo {
        city: format!("{} ({})", city.name, city.adcode),
        counties: counties.len(),
        streets: streets.len(),
        communities: communities.len(),
        grids: all.len(),
        users: users.clone(),
        demo_grid,
        demo_centre,
        demo_point,
    };
    admin_units(db).await?;
    if grid_version::Entity::find().count(db).await? > 0 {
        return Ok(demo);
    }
    tracing::info!(grids = all.len(), "seeding the demo city");
    let txn = db.begin().await?;
    let epoch = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).single().unwrap_or_else(Utc::now);
    // The city and its counties are among the administrative units already.
    let units = std::iter::empty()
        .chain(streets.iter().map(|(code, (name, county))| unit::Model {
            code: code.clone(),
            name: name.clone(),
            level: "street".into(),
            parent: Some(county.clone()),
            geometry: None,
        }))
        .chain(communities.iter().map(|(code, (name, street))| unit::Model {
            code: code.clone(),
            name: name.clone(),
            level: "community".into(),
            parent: Some(street.clone()),
            geometry: None,
        }));
    for u in units {
        u.into_active_model().reset_all().insert(&txn).await?;
    }
    let centres = std::iter::once(centre::Model {
        code: city.adcode.clone(),
        name: format!("{}社会治安综合治理中心", city.name),
        level: "city".into(),
        parent: None,
    })
    .chain(counties.iter().map(|c| centre::Model {
        code: c.adcode.clone(),
        name: format!("{}综治中心", c.name),
        level: "county".into(),
        parent: Some(city.adcode.clone()),
    }))
    .chain(streets.iter().map(|(code, (name, county))| centre::Model {
        code: code.clone(),
        name: format!("{name}综治中心"),
        level: "street".into(),
        parent: Some(county.clone()),
    }));
    for c in centres {
        c.into_active_model().reset_all().insert(&txn).await?;
    }
    let rows = all
        .iter()
        .map(|g| GridRow {
            code: g.code.clone(),
            name: g.name.clone(),
            community: g.community.clone(),
            centre: g.street.clone(),
            geometry: geometry_to_string(&g.geometry),
        })
        .collect();
    let version = NewVersion {
        label: "demo city".into(),
        valid_from: epoch,
        counties: counties.iter().map(|c| c.adcode.clone()).collect(),
        source: "gridwork up (synthetic)".into(),
        created_by: "seed".into(),
    };
    gridwork_storage::grids::insert_version_in(&txn, version, rows, |_| {}).await?;
    let taxonomy: Taxonomy = serde_json::from_str(CATEGORIES)?;
    for c in &taxonomy.categories {
        category::Model {
            code: c.code.clone(),
            name_zh: c.name_zh.clone(),
            name_en: c.name_en.clone(),
            petition: c.petition,
            taxonomy_version: taxonomy.version as i32,
        }
        .into_active_model()
        .reset_all()
        .insert(&txn)
        .await?;
    }
    let routing: RoutingTable = serde_json::from_str(ROUTING)?;
    routing.validate()?;
    routing_table::Model {
        version: routing.version as i32,
        body: serde_json::to_string(&routing)?,
        created_at: Utc::now(),
    }
    .into_active_model()
    .reset_all()
    .insert(&txn)
    .await?;
    for (username, role, scope, channel) in &users {
        user::Model {
            id: username.clone(),
            username: username.clone(),
            password_hash: hash(DEMO_PASSWORD, &format!("gridwork-demo-{username}"))?,
            role: role.clone(),
            scope: scope.clone(),
            display_name: username.clone(),
            channel: channel.clone(),
            deactivated_at: None,
        }
        .into_active_model()
        .reset_all()
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(demo)
}

/// The administrative boundaries shipped in `data/` (Shandong and Fujian:
/// provinces, cities, counties), as units, each added once: counties with
/// their boundary, which the assigner and grid imports use.
pub async fn admin_units(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let known: std::collections::HashSet<String> = unit::Entity::find()
        .select_only()
        .column(unit::Column::Code)
        .filter(unit::Column::Level.is_in(["province", "city", "county"]))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let all = crate::grids::boundaries(None)?;
    let txn = db.begin().await?;
    let mut added = 0;
    for b in all.into_iter().filter(|b| !known.contains(&b.adcode)) {
        let geometry = (b.level == "county").then(|| geometry_to_string(&b.geometry));
        unit::Model { code: b.adcode, name: b.name, level: b.level, parent: b.parent, geometry }
            .into_active_model()
            .reset_all()
            .insert(&txn)
            .await?;
        added += 1;
    }
    txn.commit().await?;
    if added > 0 {
        tracing::info!(units = added, "administrative units added");
    }
    Ok(added)
}
