//! `GET /v1/grids/shapes`: the grids of a map's view, for the dispatcher's
//! console. The boundaries are the basemap (a government intranet has no
//! tile server), so a county or city user's map of thousands of grids
//! fetches only the box it shows, simplified for its zoom, and only the
//! grids of the caller's scope.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use geo::{LineString, Simplify};
use gridwork_domain::codes;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::State;

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

/// What a grid's feature says of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridShapeProperties {
    /// The grid's code (15 digits).
    pub code: String,
    /// The centre that owns it (its queues).
    pub centre: String,
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
    /// More than [`MAX_SHAPES`] grids meet the box: these are the first by
    /// code; zoom in for the rest.
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
/// the view, as GeoJSON, simplified for the zoom.
#[utoipa::path(get, path = "/v1/grids/shapes", tag = "grids", operation_id = "grid_shapes", params(ShapesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grids in view", body = GridShapes, content_type = "application/geo+json"),
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
    let truncated = hits.len() > MAX_SHAPES;
    hits.truncate(MAX_SHAPES);
    let epsilon = pixel_degrees(q.zoom.unwrap_or(18));
    let features = hits
        .into_iter()
        .map(|i| {
            let code = index.grid_code(i).to_owned();
            GridShape {
                kind: "Feature",
                id: code.clone(),
                properties: GridShapeProperties { centre: grids.centres.get(&code).cloned().unwrap_or_default(), code },
                geometry: ShapeGeometry {
                    kind: "MultiPolygon",
                    coordinates: index.grid_rings(i).map(|r| vec![simplify_ring(r, epsilon)]).collect(),
                },
            }
        })
        .collect();
    Ok(HttpResponse::Ok().content_type("application/geo+json").json(GridShapes {
        kind: "FeatureCollection",
        features,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
