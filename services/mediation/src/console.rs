//! The dispatcher's web console (`/console/`): a static TypeScript page
//! built with Vite from `console/` and embedded in the binary, so serving it
//! needs nothing at run time — no Node, no CDN (ADR 0034). mediation serves
//! it: the queues are its own, and in the production shape it is the
//! service dispatchers reach.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script
//! or style, no third-party origin, no framing). Hashed assets
//! (`/console/assets/…`) are cached for a year; `index.html` is revalidated
//! on every load, so a new release is picked up at once.

use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};
use rust_embed::Embed;

/// The built console (`console/dist`, committed; `scripts/console.sh
/// check` rebuilds it from source and compares).
#[derive(Embed)]
#[folder = "../../console/dist/"]
struct Bundle;

/// The console's Content-Security-Policy: its own origin only, no inline
/// code, never in a frame.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src blob:; \
     font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `GET /console`: to `/console/`, where the page's relative links resolve.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/console/")).finish()
}

/// `GET /console/{path}`: a file of the bundle; any other path without an
/// extension is the page itself (its routes live in the URL), one with an
/// extension that is not in the bundle is 404.
pub async fn file(path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    let (name, file) = match Bundle::get(&path) {
        Some(f) if !path.is_empty() => (path.as_str(), f),
        _ if path.is_empty() || !path.rsplit('/').next().unwrap_or("").contains('.') => {
            match Bundle::get("index.html") {
                Some(f) => ("index.html", f),
                None => return not_built(),
            }
        }
        _ => return gridwork_platform::ApiError::not_found("file").error_response(),
    };
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.metadata.mimetype().to_owned()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(file.data.into_owned())
}

/// The bundle has no `index.html`: the console was not built into this
/// binary.
fn not_built() -> HttpResponse {
    gridwork_platform::ApiError::not_found("console (not built into this binary)").error_response()
}
