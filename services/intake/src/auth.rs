//! Identity at intake, the embedded issuer's endpoints (ADR 0005, 0018,
//! 0025): `token` (`POST /v1/auth/token`: password sign-in and refresh
//! rotation), `session` (log-out and every other way a session ends, and
//! the pruning of expired refresh tokens), `signin` (throttling of failed
//! sign-ins and the bound on Argon2 work), and the issuer's public keys.

use actix_web::{web, HttpResponse};

use crate::State;

pub mod session;
pub mod signin;
pub mod token;

/// The embedded issuer's public keys (JWK Set), for verifying its tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.issuer.jwks())
}
