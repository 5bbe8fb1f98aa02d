//! `GET /v1/grids/shapes`: the grids of a map's view, for the dispatcher's
//! console. The boundaries are the basemap (a government intranet has no
//! tile server), so a county or city user's map of thousands of grids
//! fetches only the box it shows, simplified for its zoom, and only the
//! grids of the caller's scope. A province's 100,000 grids at low zoom are
//! a few pixels each: past [`MAX_SHAPES`] grids in view the answer is the
//! counties they lie in, each with its number of grids in view.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use geo::{LineString, Simplify};
use gridwork_domain::codes;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{Grids, State};

/// At most this many grids in one answer (`truncated` says when more meet
/// the box: zoom in).
pub const MAX_SHAPES: usize = 5_000;

/// Query of `GET /v1/grids/shapes`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShapesQuery {
    /// The map's view: `west,south,east,north` in degrees (WGS-84).
    #[param(
        pattern = r"^-?[0-9]{1,3}(\.[0-9]+)?,-?[0-9]{1,2}(\.[0-9]+)?,-?[0-9]{1,3}(\.[0-9]+)?,-?[0-9]{1,2}(\.[0-9]+)?$"
    )]
    pub bbox: String,
    /// The map's zoom level (0–22, as Leaflet counts): boundaries are
    /// simplified to about a pixel at it. Default 18 (all detail).
    #[param(minimum = 0, maximum = 22)]
    pub zoom: Option<u8>,
}

/// A grid's boundary, simplified.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridShape {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The grid's code.
    pub id: String,
    pub properties: GridShapeProperties,
    pub geometry: ShapeGeometry,
}

/// What a feature says of its area.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridShapeProperties {
    /// The grid's code (15 digits), or a county's (6 digits).
    pub code: String,
    /// The centre that owns the grid (its queues); absent for a county.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centre: Option<String>,
    /// `grid`; `county` when more than [`MAX_SHAPES`] grids meet the view
    /// (a province at low zoom): each feature is then a county's boundary,
    /// standing for its grids in view.
    #[schema(schema_with = level)]
    pub level: &'static str,
    /// A county's number of grids in view (of the caller's scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grids: Option<usize>,
}

fn level() -> utoipa::openapi::schema::Object {
    gridwork_platform::openapi::one_of(["grid", "county"])
}

/// A MultiPolygon: one polygon per ring of the grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShapeGeometry {
    /// Always `MultiPolygon`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Polygons of rings of `[lon, lat]` positions.
    pub coordinates: Vec<Vec<Vec<[f64; 2]>>>,
}

/// Body of `GET /v1/grids/shapes`: a GeoJSON FeatureCollection.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridShapes {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub features: Vec<GridShape>,
    /// More than [`MAX_SHAPES`] grids meet the box and some lie in no
    /// county the registry knows: these are the first by code; zoom in for
    /// the rest.
    pub truncated: bool,
}

fn bad_box() -> ApiError {
    ApiError::bad_request(
        "invalid_bbox",
        "bbox must be west,south,east,north in degrees, west < east, south < north",
        "bbox 须为 西,南,东,北 经纬度",
    )
    .with_field("bbox")
}

/// `[west, south, east, north]` of `text`.
pub fn parse_bbox(text: &str) -> Result<[f64; 4], ApiError> {
    let v: Vec<f64> =
        text.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad_box())?;
    let [w, s, e, n] = <[f64; 4]>::try_from(v).map_err(|_| bad_box())?;
    let ok = (-180.0..=180.0).contains(&w)
        && (-180.0..=180.0).contains(&e)
        && (-90.0..=90.0).contains(&s)
        && (-90.0..=90.0).contains(&n)
        && w < e
        && s < n;
    if ok {
        Ok([w, s, e, n])
    } else {
        Err(bad_box())
    }
}

/// About one screen pixel at `zoom`, in degrees (256-pixel tiles).
pub fn pixel_degrees(zoom: u8) -> f64 {
    360.0 / (256.0 * 2f64.powi(i32::from(zoom.min(22))))
}

/// `ring` simplified to `epsilon` degrees, still a closed ring (else the
/// ring as it is).
pub fn simplify_ring(ring: &[[f64; 2]], epsilon: f64) -> Vec<[f64; 2]> {
    let line: LineString<f64> = ring.iter().map(|p| (p[0], p[1])).collect();
    let simple = line.simplify(&epsilon);
    if simple.0.len() >= 4 {
        simple.0.iter().map(|c| [c.x, c.y]).collect()
    } else {
        ring.to_vec()
    }
}

/// `GET /v1/grids/shapes`: the grids of the caller's scope whose boxes meet
/// the view, as GeoJSON, simplified for the zoom; past [`MAX_SHAPES`] grids
/// (a province at low zoom), the counties they lie in instead.
#[utoipa::path(get, path = "/v1/grids/shapes", tag = "grids", operation_id = "grid_shapes", params(ShapesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grids in view (their counties, with how many grids each, when there are too many)", body = GridShapes, content_type = "application/geo+json"),
        BadRequest, Unauthorized, Unavailable,
    ))]
pub async fn shapes(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<ShapesQuery>,
) -> Result<HttpResponse, ApiError> {
    let bbox = parse_bbox(&q.bbox)?;
    let scope = match caller.0.scope.as_str() {
        "" => String::new(),
        s => codes::significant_prefix(s)
            .map(str::to_owned)
            .map_err(|_| ApiError::forbidden("your token's scope is not an administrative code"))?,
    };
    let grids = state.grids_at(Utc::now()).await.map_err(|e| ApiError::unavailable(&e))?;
    let index = &grids.index;
    let mut hits: Vec<u32> = index.grids_in(bbox).filter(|&i| index.grid_code(i).starts_with(&scope)).collect();
    hits.sort_unstable_by(|a, b| index.grid_code(*a).cmp(index.grid_code(*b)));
    let epsilon = pixel_degrees(q.zoom.unwrap_or(18));
    let (features, truncated) = features(&grids, &hits, epsilon, MAX_SHAPES);
    Ok(HttpResponse::Ok().content_type("application/geo+json").json(GridShapes {
        kind: "FeatureCollection",
        features,
        truncated,
    }))
}

/// The features of `hits` (grids sorted by code): the grids, or past `max`
/// of them, their counties (see [`county_features`]).
fn features(grids: &Grids, hits: &[u32], epsilon: f64, max: usize) -> (Vec<GridShape>, bool) {
    if hits.len() > max {
        county_features(grids, hits, epsilon, max)
    } else {
        (hits.iter().map(|&i| grid_feature(grids, i, epsilon)).collect(), false)
    }
}

/// Grid `i`, simplified to `epsilon` degrees.
fn grid_feature(grids: &Grids, i: u32, epsilon: f64) -> GridShape {
    let code = grids.index.grid_code(i).to_owned();
    GridShape {
        kind: "Feature",
        id: code.clone(),
        properties: GridShapeProperties {
            centre: Some(grids.centres.get(&code).cloned().unwrap_or_default()),
            code,
            level: "grid",
            grids: None,
        },
        geometry: ShapeGeometry {
            kind: "MultiPolygon",
            coordinates: grids.index.grid_rings(i).map(|r| vec![simplify_ring(r, epsilon)]).collect(),
        },
    }
}

/// Too many grids for one view: the counties they lie in, each with its
/// number of grids in view. Grids of counties the registry has no boundary
/// for follow as grids, up to `max` features in all (`truncated` when some
/// are left out).
fn county_features(grids: &Grids, hits: &[u32], epsilon: f64, max: usize) -> (Vec<GridShape>, bool) {
    let index = &grids.index;
    let mut per_county: Vec<(u32, usize)> = Vec::new();
    let mut loose: Vec<u32> = Vec::new();
    for &i in hits {
        let code = index.grid_code(i);
        match code.get(..6).and_then(|c| index.county_index(c)) {
            Some(c) => match per_county.last_mut() {
                // Hits are sorted by code, so a county's grids are adjacent.
                Some((last, n)) if *last == c => *n += 1,
                _ => per_county.push((c, 1)),
            },
            None => loose.push(i),
        }
    }
    let mut features: Vec<GridShape> = per_county
        .into_iter()
        .map(|(c, n)| {
            let code = index.county_code(c).to_owned();
            GridShape {
                kind: "Feature",
                id: code.clone(),
                properties: GridShapeProperties { code, centre: None, level: "county", grids: Some(n) },
                geometry: ShapeGeometry {
                    kind: "MultiPolygon",
                    coordinates: index.county_rings(c).map(|r| vec![simplify_ring(r, epsilon)]).collect(),
                },
            }
        })
        .collect();
    let room = max.saturating_sub(features.len());
    let truncated = loose.len() > room;
    loose.truncate(room);
    features.extend(loose.into_iter().map(|i| grid_feature(grids, i, epsilon)));
    (features, truncated)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests
    use super::*;
    use geo::{polygon, MultiPolygon};
    use gridwork_geoindex::{Area, GridIndex};
    use std::collections::HashMap;

    fn square(code: &str, x0: f64, y0: f64, size: f64) -> Area {
        let p = polygon![(x: x0, y: y0), (x: x0 + size, y: y0), (x: x0 + size, y: y0 + size), (x: x0, y: y0 + size), (x: x0, y: y0)];
        Area { code: code.into(), geometry: MultiPolygon(vec![p]) }
    }

    #[test]
    fn past_the_limit_a_view_gets_counties_with_their_grid_counts() {
        // Two counties of 3 grids each, and 2 grids of a county with no boundary.
        let mut grids = Vec::new();
        for (county, x0) in [("370101", 0.0), ("370102", 1.0), ("370199", 2.0)] {
            let n = if county == "370199" { 2 } else { 3 };
            for k in 0..n {
                grids.push(square(&format!("{county}001001{k:03}"), x0 + 0.3 * f64::from(k), 0.0, 0.3));
            }
        }
        let counties = vec![square("370101", 0.0, 0.0, 1.0), square("370102", 1.0, 0.0, 1.0)];
        let index = GridIndex::new(grids, counties, 50.0).unwrap();
        let centres = index.codes().iter().map(|c| (c.clone(), c[..9].to_owned())).collect::<HashMap<_, _>>();
        let grids = Grids { index, centres };
        let mut hits: Vec<u32> = grids.index.grids_in([-1.0, -1.0, 4.0, 1.0]).collect();
        hits.sort_unstable_by(|a, b| grids.index.grid_code(*a).cmp(grids.index.grid_code(*b)));
        assert_eq!(hits.len(), 8);
        let summary = |(f, t): (Vec<GridShape>, bool)| {
            let v: Vec<(String, &str, Option<usize>, bool)> = f
                .into_iter()
                .map(|f| (f.id, f.properties.level, f.properties.grids, f.properties.centre.is_some()))
                .collect();
            (v, t)
        };
        // Within the limit: every grid, with its centre.
        let (all, truncated) = summary(features(&grids, &hits, 0.0, 8));
        assert!(!truncated);
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|(_, level, n, centre)| *level == "grid" && n.is_none() && *centre));
        // Past it: the two counties with 3 grids each, then the loose grids.
        let (few, truncated) = summary(features(&grids, &hits, 0.0, 7));
        assert!(!truncated);
        assert_eq!(
            few,
            vec![
                ("370101".to_owned(), "county", Some(3), false),
                ("370102".to_owned(), "county", Some(3), false),
                ("370199001001000".to_owned(), "grid", None, true),
                ("370199001001001".to_owned(), "grid", None, true),
            ]
        );
        // Room for only one loose grid: truncated.
        let (cut, truncated) = summary(features(&grids, &hits, 0.0, 3));
        assert!(truncated);
        assert_eq!(cut.len(), 3);
    }

    #[test]
    fn a_box_is_four_ordered_degrees() {
        assert_eq!(parse_bbox("122.0,37.4,122.2,37.6").unwrap(), [122.0, 37.4, 122.2, 37.6]);
        for bad in ["", "1,2,3", "122.2,37.4,122.0,37.6", "0,91,1,92", "a,b,c,d", "1,2,3,4,5"] {
            assert_eq!(parse_bbox(bad).unwrap_err().code, "invalid_bbox", "{bad:?}");
        }
    }

    #[test]
    fn a_ring_is_simplified_to_about_a_pixel_and_stays_closed() {
        // A square with 400 points along its edges.
        let mut ring = Vec::new();
        for k in 0..100 {
            ring.push([k as f64 / 100.0, 0.0]);
        }
        for k in 0..100 {
            ring.push([1.0, k as f64 / 100.0]);
        }
        for k in 0..100 {
            ring.push([1.0 - k as f64 / 100.0, 1.0]);
        }
        for k in 0..100 {
            ring.push([0.0, 1.0 - k as f64 / 100.0]);
        }
        ring.push([0.0, 0.0]);
        let simple = simplify_ring(&ring, pixel_degrees(10));
        assert_eq!(simple.len(), 5, "{simple:?}");
        assert_eq!(simple.first(), simple.last());
        // A triangle-thin ring that would collapse keeps its points.
        let thin = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.000001], [0.0, 0.0]];
        assert_eq!(simplify_ring(&thin, 0.1).len(), 4);
        assert!(pixel_degrees(0) > pixel_degrees(18));
    }
}
