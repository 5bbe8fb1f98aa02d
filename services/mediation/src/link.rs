//! Several grid workers often report the same incident. A report is linked
//! to an open case when it has the same category, lies in the same grid or
//! a neighbouring one (their boundaries touch), within
//! `mediation.link_distance_m`, and happened within
//! `mediation.link_window_minutes` of the case's first report.

use chrono::{DateTime, Duration, Utc};
use geo::Intersects;
use gridwork_domain::{CaseStatus, Hierarchy};
use gridwork_storage::entity::{case, grid_shape};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::State;

use gridwork_geoindex::{haversine_m, METRES_PER_DEGREE};

/// The newest stored boundary of grid `code`.
async fn shape<C: ConnectionTrait>(db: &C, code: &str) -> Result<Option<geo::MultiPolygon<f64>>, DbErr> {
    let row = grid_shape::Entity::find()
        .filter(grid_shape::Column::Code.eq(code))
        .order_by_desc(grid_shape::Column::VersionId)
        .one(db)
        .await?;
    Ok(row.and_then(|r| gridwork_geoindex::geojson_io::parse_geometry(&r.geometry).ok()))
}

/// Whether grids `a` and `b` are the same or share a boundary.
pub async fn neighbours<C: ConnectionTrait>(db: &C, a: &str, b: &str) -> Result<bool, DbErr> {
    if a == b {
        return Ok(true);
    }
    if a.is_empty() || b.is_empty() {
        return Ok(false);
    }
    Ok(match (shape(db, a).await?, shape(db, b).await?) {
        (Some(x), Some(y)) => x.intersects(&y),
        _ => false,
    })
}

/// The open case this report duplicates, nearest first, with its distance.
pub async fn find_open_case<C: ConnectionTrait>(
    db: &C,
    state: &State,
    category: &str,
    at: &Hierarchy,
    lat: f64,
    lon: f64,
    occurred_at: DateTime<Utc>,
) -> Result<Option<(case::Model, f64)>, DbErr> {
    let max = state.link_distance_m;
    if max <= 0.0 || !lat.is_finite() || !lon.is_finite() || (lat == 0.0 && lon == 0.0) {
        return Ok(None);
    }
    let window = Duration::minutes(state.link_window_minutes);
    // The box is measured on the same sphere as the distance, so it holds
    // the whole circle.
    let dlat = max / METRES_PER_DEGREE;
    let dlon = max / (METRES_PER_DEGREE * lat.to_radians().cos().abs().max(0.01));
    let mut q = case::Entity::find()
        .filter(case::Column::Category.eq(category))
        .filter(case::Column::Status.is_not_in([CaseStatus::Closed.as_str(), CaseStatus::Rejected.as_str()]))
        .filter(case::Column::OccurredAt.between(occurred_at - window, occurred_at + window))
        .filter(case::Column::Lat.between(lat - dlat, lat + dlat))
        .filter(case::Column::Lon.between(lon - dlon, lon + dlon));
    if !at.county.is_empty() {
        q = q.filter(case::Column::County.eq(at.county.as_str()));
    }
    let mut near: Vec<(case::Model, f64)> = q
        .limit(64)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|m| {
            let d = haversine_m(lon, lat, m.lon?, m.lat?);
            (d <= max).then_some((m, d))
        })
        .collect();
    near.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.created_at.cmp(&b.0.created_at)));
    for (m, d) in near {
        let same_place = if at.grid.is_empty() || m.grid.is_empty() {
            at.grid == m.grid
        } else {
            neighbours(db, &at.grid, &m.grid).await?
        };
        if same_place {
            return Ok(Some((m, d)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // The geo index's distance (lon, lat order), as linking uses it.
        // One degree of latitude is about 111.2 km.
        assert!((haversine_m(122.0, 37.0, 122.0, 38.0) - 111_195.0).abs() < 50.0);
        assert_eq!(haversine_m(122.1, 37.5, 122.1, 37.5), 0.0);
        // 0.001° of longitude at 37.5°N is about 88 m.
        let d = haversine_m(122.1, 37.5, 122.101, 37.5);
        assert!((d - 88.2).abs() < 0.5, "{d}");
        // The search box holds the whole circle: a point due north at the
        // full distance lies inside it.
        let max = 150.0;
        assert!(haversine_m(122.1, 37.5, 122.1, 37.5 + max / METRES_PER_DEGREE) <= max + 1e-6);
    }
}
