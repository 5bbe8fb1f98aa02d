//! Discovery: `services.{json,xml}` lists the category taxonomy as
//! GeoReport services, `services/{code}.{json,xml}` defines one (petition
//! categories are not offered).

use actix_web::{web, HttpRequest, HttpResponse};
use gridwork_storage::entity::category;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::areas::{jurisdiction, Areas};
use super::documents::{respond, Doc, ServiceOut};
use super::format::Format;
use super::params::Params;
use crate::error::Open311Error;
use crate::State;

pub(super) async fn services(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let format = match Format::parse(&path) {
        Ok(f) => f,
        Err(e) => return e.render(Format::Json),
    };
    respond(
        format,
        async {
            let p = Params::parse(req.query_string())?;
            jurisdiction(&state, &areas, &p).await?;
            let cats = category::Entity::find()
                .filter(category::Column::Petition.eq(false))
                .order_by_asc(category::Column::Code)
                .all(&state.db)
                .await?;
            Ok(Doc::Services(cats.into_iter().map(ServiceOut::from_category).collect()))
        }
        .await,
    )
}

pub(super) async fn service_definition(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let (code, format) = match Format::split(&path) {
        Ok(s) => s,
        Err(e) => return e.render(Format::Json),
    };
    respond(
        format,
        async {
            let p = Params::parse(req.query_string())?;
            jurisdiction(&state, &areas, &p).await?;
            match category::Entity::find_by_id(code.to_owned()).one(&state.db).await? {
                Some(c) if !c.petition => Ok(Doc::Definition(c.code)),
                Some(_) => Err(Open311Error::not_found(format!(
                    "service_code {code:?}: petitions are not offered through Open311 (they carry personal data \
                     and follow the petition procedure); submit them at a centre"
                ))),
                None => Err(Open311Error::not_found(format!("service_code {code:?} not found; see services.json"))),
            }
        }
        .await,
    )
}
