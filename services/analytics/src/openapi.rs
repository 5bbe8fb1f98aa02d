//! analytics' part of the OpenAPI 3 description (utoipa): KPIs, public
//! KPIs and ledgers. The process serves it, merged with the other
//! services', at `/openapi.json`.
//!
//! The KPI figures are domain types (`gridwork_domain::kpi::KpiRow`,
//! `Ratio`), which know nothing of HTTP; their shapes are described here
//! ([`crate::schema`]), and a unit test checks them against what the
//! domain types serialise to.

use utoipa::OpenApi;

use crate::schema::{KpiRowSchema, PublicKpiRowSchema, RatioSchema};

#[derive(OpenApi)]
#[openapi(
    paths(crate::kpis, crate::public_kpis, crate::ledger::case_ledger, crate::ledger::kpi_ledger),
    components(schemas(
        gridwork_platform::ApiError,
        crate::KpisOut,
        crate::PublicKpisOut,
        KpiRowSchema,
        PublicKpiRowSchema,
        RatioSchema,
    )),
    tags(
        (name = "kpis", description = "Governance KPIs (初次信访事项一次性化解率, 按期办结率, 满意率 …) by jurisdiction and period"),
        (name = "public", description = "Published evaluation results (评价结果公开): no token, no personal data"),
        (name = "ledgers", description = "Electronic ledgers (台账电子化) as CSV or XLSX"),
    )
)]
pub struct AnalyticsApi;

/// analytics' part of `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    AnalyticsApi::openapi()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests
    use std::collections::BTreeSet;

    use std::collections::BTreeMap;

    use chrono::NaiveDate;
    use gridwork_domain::kpi::{self, KpiRow, Ratio};
    use serde_json::Value;

    use super::*;

    fn row() -> KpiRow {
        KpiRow {
            period_start: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            volume: 12,
            volume_by_category: BTreeMap::from([("dispute.neighbourhood".into(), 9), ("petition.land".into(), 3)]),
            closed: 7,
            on_time_close_out: Ratio::new(6, 7),
            on_the_spot_resolution: Ratio::new(5, 7),
            on_time_acceptance: Ratio::new(0, 0),
            backlog: 5,
            satisfaction: Ratio::new(4, 5),
            participation: Ratio::new(5, 7),
            callbacks_unanswered: 2,
            median_hours_to_close: Some(30),
            petitions: 3,
            first_time_petitions: 2,
            repeat_petition_rate: Ratio::new(1, 3),
            escalation_rate: Ratio::new(0, 3),
            transfer_up_rate: Ratio::new(1, 12),
            first_contact_resolution: Ratio::new(1, 2),
            first_contact_resolution_provisional: Ratio::new(2, 2),
        }
    }

    fn properties(api: &Value, name: &str) -> BTreeSet<String> {
        let schema = &api["components"]["schemas"][name];
        schema["properties"].as_object().unwrap_or_else(|| panic!("{name}: {schema}")).keys().cloned().collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// The described shapes are the domain's: every field the domain
    /// serialises is described, and nothing else.
    #[test]
    fn the_kpi_schemas_are_what_the_domain_serialises() {
        let api = serde_json::to_value(spec()).unwrap();
        let full = serde_json::to_value(row()).unwrap();
        assert_eq!(properties(&api, "KpiRow"), keys(&full));
        assert_eq!(properties(&api, "Ratio"), keys(&full["on_time_close_out"]));
        // Withheld as a whole (a min cell above every count) and not at all.
        for min_cell in [1000, 1] {
            let public = kpi::public_row(&row(), min_cell);
            assert_eq!(properties(&api, "PublicKpiRow"), keys(&public), "min_cell {min_cell}: {public}");
        }
    }

    #[test]
    fn every_analytics_route_is_described() {
        let api = serde_json::to_value(spec()).unwrap();
        for r in crate::ROUTES {
            let op = &api["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{r:?} missing");
            assert_eq!(
                op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ApiError",
                "{r:?}"
            );
        }
    }
}
