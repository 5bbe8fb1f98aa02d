//! `GET /v1/categories`: the incident taxonomy (事件分类) the registry was
//! seeded with, so that a phone or the console names a category in Chinese
//! or English instead of showing its code.

use actix_web::{web, HttpResponse};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::category;
use sea_orm::{EntityTrait, QueryOrder};
use serde::Serialize;
use utoipa::ToSchema;

use crate::State;

/// One category of the taxonomy.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    /// The code reports carry (`dispute.neighbourhood`, …).
    pub code: String,
    /// Its name in Chinese (邻里纠纷, …).
    pub name_zh: String,
    /// Its name in English.
    pub name_en: String,
    /// Whether a report of it is a petition (信访事项), with the petition
    /// clocks.
    pub petition: bool,
}

/// Body of `GET /v1/categories`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Categories {
    /// The taxonomy's version (0 when none is loaded).
    pub version: i32,
    /// By code.
    pub items: Vec<CategoryView>,
}

/// `GET /v1/categories`: every category, by code, to anyone signed in.
#[utoipa::path(get, path = "/v1/categories", tag = "grids", operation_id = "categories",
    security(("bearer" = [])),
    responses((status = 200, description = "The taxonomy", body = Categories), Unauthorized, Unavailable))]
pub async fn list(state: web::Data<State>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let rows = category::Entity::find().order_by_asc(category::Column::Code).all(&state.db).await.map_err(|e| {
        if gridwork_storage::is_unavailable(&e) {
            ApiError::unavailable(&e)
        } else {
            ApiError::internal(&e)
        }
    })?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "private, max-age=300")).json(Categories {
        version: rows.iter().map(|c| c.taxonomy_version).max().unwrap_or(0),
        items: rows
            .into_iter()
            .map(|c| CategoryView { code: c.code, name_zh: c.name_zh, name_en: c.name_en, petition: c.petition })
            .collect(),
    }))
}
