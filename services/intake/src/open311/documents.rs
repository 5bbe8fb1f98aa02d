//! What Open311 answers with: services, service definitions, requests and
//! posted requests, rendered in the format the path names.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use gridwork_storage::entity::category;
use serde::Serialize;

use super::format::{el, xml_list, xml_response, Format, XML_HEAD};
use crate::error::Open311Error;

/// One GeoReport service: a category of the taxonomy.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOut {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    pub metadata: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub keywords: String,
    pub group: String,
}

impl ServiceOut {
    pub(super) fn from_category(c: category::Model) -> Self {
        let group = c.code.split('.').next().unwrap_or_default().to_owned();
        ServiceOut {
            keywords: format!("{}, {}, {}", c.code.replace(['.', '_'], ", "), c.name_en, c.name_zh),
            service_code: c.code,
            service_name: c.name_zh,
            description: c.name_en,
            metadata: false,
            kind: "realtime",
            group,
        }
    }

    fn xml_fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_code", Some(self.service_code.clone())),
            ("service_name", Some(self.service_name.clone())),
            ("description", Some(self.description.clone())),
            ("metadata", Some(self.metadata.to_string())),
            ("type", Some(self.kind.to_owned())),
            ("keywords", Some(self.keywords.clone())),
            ("group", Some(self.group.clone())),
        ]
    }
}

/// A service request's status, as GeoReport shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestOut {
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: &'static str,
    pub status_notes: String,
    pub service_name: Option<String>,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: Option<String>,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: String,
    pub expected_datetime: Option<String>,
    pub address: Option<String>,
    pub address_id: Option<String>,
    pub zipcode: Option<String>,
    pub lat: f64,
    pub long: f64,
    pub media_url: Option<String>,
}

impl RequestOut {
    fn xml_fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_request_id", Some(self.service_request_id.clone())),
            ("status", Some(self.status.to_owned())),
            ("status_notes", Some(self.status_notes.clone())),
            ("service_name", self.service_name.clone()),
            ("service_code", Some(self.service_code.clone())),
            ("description", Some(self.description.clone())),
            ("agency_responsible", self.agency_responsible.clone()),
            ("service_notice", self.service_notice.clone()),
            ("requested_datetime", Some(self.requested_datetime.clone())),
            ("updated_datetime", Some(self.updated_datetime.clone())),
            ("expected_datetime", self.expected_datetime.clone()),
            ("address", self.address.clone()),
            ("address_id", self.address_id.clone()),
            ("zipcode", self.zipcode.clone()),
            ("lat", Some(self.lat.to_string())),
            ("long", Some(self.long.to_string())),
            ("media_url", self.media_url.clone()),
        ]
    }
}

/// The answer to a POST.
#[derive(Debug, Clone, Serialize)]
pub struct PostedOut {
    pub service_request_id: String,
    pub service_notice: String,
    pub account_id: Option<String>,
}

pub(super) enum Doc {
    Services(Vec<ServiceOut>),
    Definition(String),
    Requests(Vec<RequestOut>),
    Posted(Vec<PostedOut>),
}

impl Doc {
    fn render(&self, format: Format) -> HttpResponse {
        match (format, self) {
            (Format::Json, Doc::Services(s)) => HttpResponse::Ok().json(s),
            (Format::Json, Doc::Definition(code)) => {
                HttpResponse::Ok().json(serde_json::json!({"service_code": code, "attributes": []}))
            }
            (Format::Json, Doc::Requests(r)) => HttpResponse::Ok().json(r),
            (Format::Json, Doc::Posted(p)) => HttpResponse::Ok().json(p),
            (Format::Xml, doc) => xml_response(StatusCode::OK, doc.xml()),
        }
    }

    fn xml(&self) -> String {
        match self {
            Doc::Services(s) => xml_list("services", "service", s.iter().map(ServiceOut::xml_fields)),
            Doc::Definition(code) => {
                let mut x = String::from(XML_HEAD);
                x.push_str("<service_definition>");
                el(&mut x, "service_code", Some(code));
                el(&mut x, "attributes", None);
                x.push_str("</service_definition>");
                x
            }
            Doc::Requests(r) => xml_list("service_requests", "request", r.iter().map(RequestOut::xml_fields)),
            Doc::Posted(p) => xml_list(
                "service_requests",
                "request",
                p.iter().map(|p| {
                    vec![
                        ("service_request_id", Some(p.service_request_id.clone())),
                        ("service_notice", Some(p.service_notice.clone())),
                        ("account_id", p.account_id.clone()),
                    ]
                }),
            ),
        }
    }
}

pub(super) fn respond(format: Format, result: Result<Doc, Open311Error>) -> HttpResponse {
    match result {
        Ok(doc) => doc.render(format),
        Err(e) => e.render(format),
    }
}
