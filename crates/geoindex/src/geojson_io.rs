//! Reading administrative boundaries, and importing and exporting the grid
//! registry, as GeoJSON.

use geo_types::{Coord, Geometry, LineString, MultiPolygon, Polygon};
use serde_json::{json, Map, Value};

/// One feature of an administrative-boundary file (the format of
/// `data/weihai-boundaries.geojson`).
#[derive(Debug, Clone)]
pub struct Boundary {
    pub adcode: String,
    pub name: String,
    pub level: String,
    pub parent: Option<String>,
    pub geometry: MultiPolygon<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoJsonError {
    #[error("not GeoJSON: {0}")]
    Parse(String),
    #[error("feature {index}: {reason}")]
    Feature { index: usize, reason: String },
    /// A malformed grid feature: its index in the collection, its `code` when
    /// it has one, and everything wrong with it.
    #[error("feature {index}{}: {reason}", code_note(.code))]
    Grid { index: usize, code: Option<String>, reason: String },
}

fn code_note(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" (grid {c})")).unwrap_or_default()
}

/// Parses a FeatureCollection of boundaries with properties `adcode`, `name`,
/// `level` and `parent_adcode`.
pub fn parse_boundaries(text: &str) -> Result<Vec<Boundary>, GeoJsonError> {
    let gj: geojson::GeoJson = text.parse().map_err(|e: geojson::Error| GeoJsonError::Parse(e.to_string()))?;
    let fc = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc,
        _ => return Err(GeoJsonError::Parse("expected a FeatureCollection".into())),
    };
    let mut out = Vec::with_capacity(fc.features.len());
    for (index, f) in fc.features.into_iter().enumerate() {
        let bad = |reason: String| GeoJsonError::Feature { index, reason };
        let prop = |name: &str| f.property(name).and_then(|v| v.as_str()).map(str::to_owned);
        let adcode = prop("adcode").ok_or_else(|| bad("missing property adcode".into()))?;
        let name = prop("name").ok_or_else(|| bad("missing property name".into()))?;
        let level = prop("level").ok_or_else(|| bad("missing property level".into()))?;
        let parent = prop("parent_adcode");
        let geometry = f.geometry.clone().ok_or_else(|| bad("no geometry".into()))?;
        let geometry = to_multipolygon(geometry).map_err(bad)?;
        out.push(Boundary { adcode, name, level, parent, geometry });
    }
    Ok(out)
}

/// A GeoJSON geometry (Polygon or MultiPolygon) as a MultiPolygon.
pub fn to_multipolygon(g: geojson::Geometry) -> Result<MultiPolygon<f64>, String> {
    match Geometry::<f64>::try_from(g).map_err(|e| e.to_string())? {
        Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        Geometry::MultiPolygon(mp) => Ok(mp),
        other => Err(format!("expected a Polygon or MultiPolygon, got {other:?}").chars().take(120).collect()),
    }
}

/// Parses a stored geometry (GeoJSON text).
pub fn parse_geometry(text: &str) -> Result<MultiPolygon<f64>, String> {
    let g: geojson::Geometry = text.parse::<geojson::GeoJson>().map_err(|e| e.to_string()).and_then(|gj| match gj {
        geojson::GeoJson::Geometry(g) => Ok(g),
        _ => Err("expected a geometry".to_owned()),
    })?;
    to_multipolygon(g)
}

/// A geometry as GeoJSON text.
pub fn geometry_to_string(g: &MultiPolygon<f64>) -> String {
    geojson::Geometry::new(geojson::Value::from(g)).to_string()
}

/// One comprehensive grid of the registry, as imported or exported.
#[derive(Debug, Clone, PartialEq)]
pub struct GridFeature {
    /// 15 digits: community (12) + 3.
    pub code: String,
    pub name: String,
    /// The grid's community code (12 digits).
    pub community: String,
    /// The centre that triages the grid's cases: a street (9 digits) or a
    /// county (6 digits) prefix of the code.
    pub centre: Option<String>,
    /// WGS-84 lon/lat.
    pub geometry: MultiPolygon<f64>,
}

/// Parses a FeatureCollection of grids: string properties `code`, `name`,
/// `community` and optional `centre` (absent or null for none), Polygon or
/// MultiPolygon geometry in WGS-84 lon/lat.
///
/// Only the structure is checked here (properties present and strings, the
/// geometry type, positions finite and within lon -180..180 / lat -90..90,
/// rings closed with at least 4 positions, as RFC 7946 requires); the codes
/// and the geometry's validity are [`crate::validate`]'s business. Every
/// malformed feature is reported, each once with all its problems.
pub fn parse_grids(text: &str) -> Result<Vec<GridFeature>, Vec<GeoJsonError>> {
    let root: Value = serde_json::from_str(text).map_err(|e| vec![GeoJsonError::Parse(e.to_string())])?;
    let features = match (root.get("type").and_then(Value::as_str), root.get("features")) {
        (Some("FeatureCollection"), Some(Value::Array(features))) => features,
        _ => return Err(vec![GeoJsonError::Parse("expected a FeatureCollection with a features array".into())]),
    };
    let mut grids = Vec::with_capacity(features.len());
    let mut errors = Vec::new();
    for (index, f) in features.iter().enumerate() {
        match parse_grid(f) {
            Ok(g) => grids.push(g),
            Err((code, reasons)) => errors.push(GeoJsonError::Grid { index, code, reason: reasons.join("; ") }),
        }
    }
    if errors.is_empty() {
        Ok(grids)
    } else {
        Err(errors)
    }
}

/// One grid feature, or its code (if any) and everything wrong with it.
fn parse_grid(f: &Value) -> Result<GridFeature, (Option<String>, Vec<String>)> {
    let mut reasons = Vec::new();
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        reasons.push("not a Feature".to_owned());
    }
    let props = f.get("properties").and_then(Value::as_object);
    let code = props.and_then(|p| p.get("code")).and_then(Value::as_str).map(str::to_owned);
    let mut required = |name: &str| -> Option<String> {
        match props.map(|p| p.get(name)) {
            None => None,
            Some(Some(Value::String(s))) => Some(s.clone()),
            Some(None | Some(Value::Null)) => {
                reasons.push(format!("missing property {name}"));
                None
            }
            Some(Some(_)) => {
                reasons.push(format!("property {name} is not a string"));
                None
            }
        }
    };
    let (code_p, name, community) = (required("code"), required("name"), required("community"));
    if props.is_none() {
        reasons.push("no properties".to_owned());
    }
    let centre = match props.and_then(|p| p.get("centre")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            reasons.push("property centre is not a string".to_owned());
            None
        }
    };
    let geometry = match f.get("geometry") {
        None | Some(Value::Null) => {
            reasons.push("no geometry".to_owned());
            None
        }
        Some(g) => match parse_grid_geometry(g) {
            Ok(mp) => Some(mp),
            Err(e) => {
                reasons.push(e);
                None
            }
        },
    };
    match (code_p, name, community, geometry) {
        (Some(code), Some(name), Some(community), Some(geometry)) if reasons.is_empty() => {
            Ok(GridFeature { code, name, community, centre, geometry })
        }
        _ => Err((code, reasons)),
    }
}

/// A Polygon or MultiPolygon GeoJSON geometry, checked position by position.
fn parse_grid_geometry(g: &Value) -> Result<MultiPolygon<f64>, String> {
    let kind = g.get("type").and_then(Value::as_str).unwrap_or("(none)");
    let coords = g.get("coordinates").ok_or_else(|| format!("{kind} geometry without coordinates"))?;
    match kind {
        "Polygon" => Ok(MultiPolygon(vec![parse_polygon(coords, None)?])),
        "MultiPolygon" => {
            let polys = coords.as_array().ok_or("MultiPolygon coordinates are not an array")?;
            let polys = polys.iter().enumerate().map(|(i, p)| parse_polygon(p, Some(i)));
            Ok(MultiPolygon(polys.collect::<Result<_, _>>()?))
        }
        other => Err(format!("geometry type {other}, expected Polygon or MultiPolygon")),
    }
}

fn parse_polygon(v: &Value, which: Option<usize>) -> Result<Polygon<f64>, String> {
    let at = which.map(|i| format!("polygon {i} ")).unwrap_or_default();
    let rings = v.as_array().ok_or_else(|| format!("{at}coordinates are not an array of rings"))?;
    let mut parsed = Vec::with_capacity(rings.len());
    for (r, ring) in rings.iter().enumerate() {
        let positions = ring.as_array().ok_or_else(|| format!("{at}ring {r} is not an array of positions"))?;
        let mut coords = Vec::with_capacity(positions.len());
        for (k, pos) in positions.iter().enumerate() {
            let here = || format!("{at}ring {r} position {k}");
            let xy = pos.as_array().filter(|a| a.len() >= 2).ok_or_else(|| format!("{}: not [lon, lat]", here()))?;
            let (Some(x), Some(y)) = (xy[0].as_f64(), xy[1].as_f64()) else {
                return Err(format!("{}: coordinates are not numbers", here()));
            };
            if !x.is_finite() || !y.is_finite() {
                return Err(format!("{}: coordinates are not finite", here()));
            }
            if !(-180.0..=180.0).contains(&x) {
                return Err(format!("{}: longitude {x} outside -180..180", here()));
            }
            if !(-90.0..=90.0).contains(&y) {
                return Err(format!("{}: latitude {y} outside -90..90", here()));
            }
            coords.push(Coord { x, y });
        }
        if coords.len() < 4 {
            return Err(format!("{at}ring {r} has {} positions, a ring needs at least 4", coords.len()));
        }
        if coords.first() != coords.last() {
            return Err(format!("{at}ring {r} is not closed (its first and last positions differ)"));
        }
        parsed.push(LineString(coords));
    }
    let mut rings = parsed.into_iter();
    let exterior = rings.next().ok_or_else(|| format!("{at}has no rings"))?;
    Ok(Polygon::new(exterior, rings.collect()))
}

/// The grids as a FeatureCollection with properties `code`, `name`,
/// `community` and `centre` (omitted when `None`); a one-part geometry is
/// written as a Polygon, others as a MultiPolygon. The inverse of
/// [`parse_grids`] for geometries with closed rings and valid coordinates.
pub fn grids_to_geojson(grids: &[GridFeature]) -> String {
    let ring = |ls: &LineString<f64>| Value::Array(ls.0.iter().map(|c| json!([c.x, c.y])).collect());
    let polygon = |p: &Polygon<f64>| {
        Value::Array(std::iter::once(p.exterior()).chain(p.interiors()).map(ring).collect::<Vec<_>>())
    };
    let features: Vec<Value> = grids
        .iter()
        .map(|g| {
            let mut props = Map::new();
            props.insert("code".into(), g.code.clone().into());
            props.insert("name".into(), g.name.clone().into());
            props.insert("community".into(), g.community.clone().into());
            if let Some(c) = &g.centre {
                props.insert("centre".into(), c.clone().into());
            }
            let geometry = match g.geometry.0.as_slice() {
                [p] => json!({ "type": "Polygon", "coordinates": polygon(p) }),
                ps => json!({ "type": "MultiPolygon", "coordinates": ps.iter().map(polygon).collect::<Vec<_>>() }),
            };
            json!({ "type": "Feature", "properties": props, "geometry": geometry })
        })
        .collect();
    json!({ "type": "FeatureCollection", "features": features }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    fn square(x0: f64, y0: f64, d: f64) -> Polygon<f64> {
        polygon![(x: x0, y: y0), (x: x0 + d, y: y0), (x: x0 + d, y: y0 + d), (x: x0, y: y0 + d)]
    }

    fn grids() -> Vec<GridFeature> {
        let with_hole = Polygon::new(
            square(122.0, 37.5, 0.01).exterior().clone(),
            vec![square(122.003, 37.503, 0.002).exterior().clone()],
        );
        vec![
            GridFeature {
                code: "371002001001001".into(),
                name: "环翠区第1街道第1社区第1网格".into(),
                community: "371002001001".into(),
                centre: Some("371002001".into()),
                geometry: MultiPolygon(vec![with_hole]),
            },
            GridFeature {
                code: "371002001001002".into(),
                name: "第2网格".into(),
                community: "371002001001".into(),
                centre: None,
                // Odd coordinates, to check that they survive exactly.
                geometry: MultiPolygon(vec![square(122.01, 37.5, 0.1 + 0.2), square(122.41, 37.5, 1.0 / 3.0)]),
            },
        ]
    }

    #[test]
    fn round_trip() {
        let g = grids();
        let text = grids_to_geojson(&g);
        assert_eq!(parse_grids(&text).unwrap(), g);
        assert!(!text.contains("null"), "centre omitted when None: {text}");
        assert_eq!(parse_grids(&grids_to_geojson(&[])).unwrap(), vec![]);
    }

    #[test]
    fn every_bad_feature_is_reported() {
        let text = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "n", "community": "371002001001"},
             "geometry": {"type": "Polygon", "coordinates": [[[122, 37.5], [122.01, 37.5], [122.01, 37.51], [122, 37.5]]]}},
            {"type": "Feature", "properties": {"code": "371002001001002", "name": "n", "community": "371002001001"},
             "geometry": {"type": "Polygon", "coordinates": [[[122, 37.5], [122.01, 37.5], [122.01, 37.51], [122, 37.5]]]}},
            {"type": "Feature", "properties": {"code": "371002001001003", "name": "n", "community": "371002001001"},
             "geometry": {"type": "LineString", "coordinates": [[122, 37.5], [122.01, 37.5]]}},
            {"type": "Feature", "properties": {"code": "371002001001004", "name": "n", "community": "371002001001"},
             "geometry": {"type": "MultiPolygon", "coordinates": [[[[122, 37.5], [122.01, 95], [122.01, 37.51], [122, 37.5]]]]}},
            {"type": "Feature", "properties": {"code": "371002001001005", "name": 5, "community": "371002001001", "centre": 3},
             "geometry": {"type": "Polygon", "coordinates": [[[122, 37.5], [122.01, 37.5], [122.01, 37.51], [122, 37.52]]]}},
            {"type": "Feature", "properties": {"code": "371002001001006", "name": "n", "community": "371002001001"},
             "geometry": {"type": "Polygon", "coordinates": [[[190, 37.5], [122.01, 37.5], [122.01, 37.51], [190, 37.5]]]}},
            {"type": "Feature", "properties": {"code": "371002001001007", "name": "n", "community": "371002001001"}, "geometry": null}
        ]}"#;
        let errors = parse_grids(text).unwrap_err();
        let got: Vec<(usize, Option<&str>, &str)> = errors
            .iter()
            .map(|e| match e {
                GeoJsonError::Grid { index, code, reason } => (*index, code.as_deref(), reason.as_str()),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(got.len(), 6, "{errors:?}");
        assert_eq!(got[0], (0, None, "missing property code"));
        assert_eq!(got[1].0, 2);
        assert!(got[1].2.contains("LineString"), "{:?}", got[1]);
        assert_eq!(got[2].0, 3);
        assert!(got[2].2.contains("latitude 95 outside -90..90"), "{:?}", got[2]);
        assert_eq!(got[3].1, Some("371002001001005"));
        for part in ["property name is not a string", "property centre is not a string", "not closed"] {
            assert!(got[3].2.contains(part), "{part}: {:?}", got[3]);
        }
        assert!(got[4].2.contains("longitude 190 outside -180..180"), "{:?}", got[4]);
        assert_eq!(got[5], (6, Some("371002001001007"), "no geometry"));
        assert_eq!(errors[2].to_string(), format!("feature 3 (grid 371002001001004): {}", got[2].2));
        assert!(errors[0].to_string().starts_with("feature 0: "));
    }

    #[test]
    fn not_a_feature_collection() {
        assert!(matches!(&parse_grids("{\"type\": \"Feature\"}").unwrap_err()[..], [GeoJsonError::Parse(_)]));
        assert!(matches!(&parse_grids("not json").unwrap_err()[..], [GeoJsonError::Parse(_)]));
        // Out-of-range numbers never reach the geometry as infinities.
        let text = r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"code": "371002001001001", "name": "n", "community": "371002001001"},
            "geometry": {"type": "Polygon", "coordinates": [[[1e999, 37.5], [122.01, 37.5], [122.01, 37.51], [1e999, 37.5]]]}}]}"#;
        assert!(parse_grids(text).is_err());
    }
}
