//! The assigner's part of the OpenAPI 3 description (utoipa): locating a
//! point and grid administration. The process serves it, merged with the
//! other services', at `/openapi.json`.
//!
//! `Hierarchy` and `Crs` are domain types, which know nothing of HTTP:
//! their shapes are described here ([`CrsName`]; the hierarchy's in
//! `gridwork_platform::openapi::HierarchySchema`, shared with mediation), and a
//! unit test checks them against what the domain types serialise to.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// The coordinate reference system of a point: GPS (`wgs84`, the default)
/// or what Chinese map SDKs report (`gcj02`, converted before lookup).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrsName {
    Wgs84,
    Gcj02,
}

/// A grid FeatureCollection (GeoJSON, RFC 7946): each feature a Polygon or
/// MultiPolygon with `properties.code` (15 digits), `name`, `community`
/// and optionally `centre`: what `gridwork grids import` reads and
/// `GET /v1/grids/versions/{id}/geojson` gives back.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct GridCollection(#[allow(dead_code)] serde_json::Value);

#[derive(OpenApi)]
#[openapi(
    paths(crate::categories::list, crate::locate, crate::shapes::shapes, crate::list_versions, crate::import_version, crate::export_version),
    components(schemas(
        gridwork_platform::ApiError,
        crate::LocateOut,
        crate::Point,
        crate::VersionsOut,
        crate::VersionView,
        crate::ImportOut,
        crate::categories::Categories,
        crate::categories::CategoryView,
        gridwork_platform::openapi::HierarchySchema,
    )),
    tags(
        (name = "grids", description = "Comprehensive grids (综合网格): locating a point, grid versions, the map; the incident taxonomy"),
    )
)]
pub struct AssignerApi;

/// The assigner's part of `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    AssignerApi::openapi()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests
    use std::collections::BTreeSet;

    use gridwork_domain::report::Crs;
    use gridwork_domain::Hierarchy;
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_domain_schemas_are_what_the_domain_serialises() {
        let api = serde_json::to_value(spec()).unwrap();
        let h = serde_json::to_value(Hierarchy::from_grid_code("371002001001001").unwrap()).unwrap();
        let described: BTreeSet<&String> =
            api["components"]["schemas"]["Hierarchy"]["properties"].as_object().unwrap().keys().collect();
        assert_eq!(described, h.as_object().unwrap().keys().collect());
        let crs: Vec<Value> = [Crs::Wgs84, Crs::Gcj02].iter().map(|c| serde_json::to_value(c).unwrap()).collect();
        let named: Vec<Value> =
            [CrsName::Wgs84, CrsName::Gcj02].iter().map(|c| serde_json::to_value(c).unwrap()).collect();
        assert_eq!(crs, named);
    }

    #[test]
    fn every_assigner_route_is_described() {
        let api = serde_json::to_value(spec()).unwrap();
        for r in crate::ROUTES {
            let op = &api["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{r:?} missing");
            assert_eq!(
                op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ApiError",
                "{r:?}"
            );
        }
    }
}
