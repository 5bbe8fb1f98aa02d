//! Tokens: JWTs signed with Ed25519 (algorithm pinned to EdDSA), with
//! issuer, audience, expiry and not-before checked, keys chosen by `kid`.
//! The embedded issuer keeps its key in a file created on first start.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Utc;
use gridwork_domain::auth::{Actor, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub scope: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// A mediator's channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("signing key: {0}")]
    Invalid(String),
}

/// The embedded token issuer.
pub struct Issuer {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Issuer {
    /// Loads the key from `path`, creating it (mode 0600) if missing.
    pub fn load_or_create(path: &Path, issuer: &str, audience: &str, ttl_secs: u64) -> Result<Self, KeyError> {
        let ferr = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        let pkcs8 = if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| ferr(e.to_string()))?;
            STANDARD.decode(text.trim()).map_err(|e| ferr(format!("not base64: {e}")))?
        } else {
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .map_err(|_| KeyError::Invalid("key generation failed".into()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| ferr(e.to_string()))?;
            }
            std::fs::write(path, STANDARD.encode(doc.as_ref())).map_err(|e| ferr(e.to_string()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| ferr(e.to_string()))?;
            }
            doc.as_ref().to_vec()
        };
        Self::from_pkcs8(&pkcs8, issuer, audience, ttl_secs)
    }

    pub fn from_pkcs8(pkcs8: &[u8], issuer: &str, audience: &str, ttl_secs: u64) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = hex::encode(&Sha256::digest(&public)[..8]);
        Ok(Issuer {
            kid,
            encoding: EncodingKey::from_ed_der(pkcs8),
            public,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: ttl_secs as i64,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs a token for `actor`, valid from now for the configured time.
    pub fn issue(&self, actor: &Actor) -> Result<(String, i64), KeyError> {
        self.issue_with(actor, self.ttl_secs)
    }

    pub fn issue_with(&self, actor: &Actor, ttl_secs: i64) -> Result<(String, i64), KeyError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: actor.id.clone(),
            role: actor.role.as_str().to_owned(),
            scope: actor.scope.clone(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            channel: actor.channel.clone(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok((token, ttl_secs))
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(&self.public),
            }]
        })
    }

    pub fn verifier(&self, leeway_secs: u64) -> Verifier {
        let mut keys = HashMap::new();
        keys.insert(self.kid.clone(), DecodingKey::from_ed_der(&self.public));
        Verifier::new(keys, &self.issuer, &self.audience, leeway_secs)
    }
}

/// Checks tokens.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<HashMap<String, DecodingKey>>,
    validation: Validation,
}

impl Verifier {
    pub fn new(keys: HashMap<String, DecodingKey>, issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.leeway = leeway_secs;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Verifier { keys: Arc::new(keys), validation: v }
    }

    /// The caller a token stands for.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        self.verify_token(token).map(|(actor, _)| actor)
    }

    /// The caller and the token's id and expiry.
    pub fn verify_token(&self, token: &str) -> Result<(Actor, TokenInfo), ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthorized("invalid_token", "the bearer token is not a JWT"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(ApiError::unauthorized("invalid_token", "token algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("invalid_token", "token has no kid"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| ApiError::unauthorized("unknown_key", "token signed with an unknown key"))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => ApiError::unauthorized("token_expired", "the token has expired"),
                K::ImmatureSignature => ApiError::unauthorized("token_not_yet_valid", "the token is not valid yet"),
                K::InvalidAudience => ApiError::unauthorized("invalid_token", "token audience not accepted"),
                K::InvalidIssuer => ApiError::unauthorized("invalid_token", "token issuer not accepted"),
                _ => ApiError::unauthorized("invalid_token", "the token is invalid"),
            }
        })?;
        let role: Role = data
            .claims
            .role
            .parse()
            .map_err(|_| ApiError::unauthorized("invalid_token", "token carries an unknown role"))?;
        let info = TokenInfo {
            jti: data.claims.jti,
            expires_at: chrono::DateTime::from_timestamp(data.claims.exp, 0).unwrap_or_else(Utc::now),
        };
        Ok((Actor { id: data.claims.sub, role, scope: data.claims.scope, channel: data.claims.channel }, info))
    }
}

/// Which token a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub jti: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Extracts the verified caller from `Authorization: Bearer …`, refusing
/// revoked tokens.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor, pub TokenInfo);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let verified = caller(req);
        let ctx = req.app_data::<web::Data<crate::Context>>().cloned();
        Box::pin(async move {
            let caller = verified?;
            if let Some(ctx) = ctx {
                if crate::revocation::is_revoked(&ctx, &caller.1.jti).await? {
                    return Err(ApiError::unauthorized("token_revoked", "the token has been revoked"));
                }
            }
            Ok(caller)
        })
    }
}

fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    let verifier =
        req.app_data::<web::Data<Verifier>>().ok_or_else(|| ApiError::internal(&"no token verifier configured"))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing_token", "send Authorization: Bearer <token>"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::unauthorized("missing_token", "send Authorization: Bearer <token>"))?;
    verifier.verify_token(token.trim()).map(|(actor, info)| Caller(actor, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Issuer::from_pkcs8(doc.as_ref(), "gridwork", "gridwork", 3600).unwrap()
    }

    #[test]
    fn issue_verify_and_refuse() {
        let iss = issuer();
        let v = iss.verifier(5);
        let actor = Actor { id: "u1".into(), role: Role::Dispatcher, scope: "371002001".into(), channel: None };
        let (t, _) = iss.issue(&actor).unwrap();
        assert_eq!(v.verify(&t).unwrap(), actor);
        let (expired, _) = iss.issue_with(&actor, -120).unwrap();
        assert_eq!(v.verify(&expired).unwrap_err().code, "token_expired");
        // Signed by another key with the same kid: refused.
        let other = issuer();
        let (forged, _) = other.issue(&actor).unwrap();
        assert_eq!(v.verify(&forged).unwrap_err().code, "unknown_key");
        // Tampered payload.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"u1","role":"admin","scope":"","iss":"gridwork","aud":"gridwork","iat":0,"nbf":0,"exp":99999999999,"jti":"x"}"#);
        assert_eq!(v.verify(&parts.join(".")).unwrap_err().code, "invalid_token");
        // alg=none.
        let none =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, iss.kid())), parts[1]);
        assert!(v.verify(&none).is_err());
        assert_eq!(iss.jwks()["keys"][0]["kid"], iss.kid());
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = Issuer::load_or_create(&path, "i", "a", 60).unwrap();
        let b = Issuer::load_or_create(&path, "i", "a", 60).unwrap();
        assert_eq!(a.kid(), b.kid());
    }
}
