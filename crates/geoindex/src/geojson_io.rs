//! Reading administrative boundaries and writing grid geometries as GeoJSON.

use geo_types::{Geometry, MultiPolygon};

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
