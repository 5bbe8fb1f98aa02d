//! Tokens: JWTs signed with Ed25519 (algorithm pinned to EdDSA), with
//! issuer, audience, expiry and not-before checked, keys chosen by `kid`.
//! The embedded issuer keeps its key in a file created on first start.
//!
//! Verifying a caller needs only the [`Verifier`]: the trusted keys and,
//! once connected, the revocation list ([`Revocations`]); never the whole
//! `Context`.

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
use crate::revocation::Revocations;

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
    /// Loads the key from `path`, creating it (mode 0600 from the first
    /// byte, [`crate::keyfile`]) if missing.
    pub fn load_or_create(path: &Path, issuer: &str, audience: &str, ttl_secs: u64) -> Result<Self, KeyError> {
        let ferr = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        if !path.exists() {
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .map_err(|_| KeyError::Invalid("key generation failed".into()))?;
            // Private from the first byte; if another process created the
            // key meanwhile, that one is read below.
            crate::keyfile::create(path, STANDARD.encode(doc.as_ref()).as_bytes()).map_err(|e| ferr(e.to_string()))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| ferr(e.to_string()))?;
        let pkcs8 = STANDARD.decode(text.trim()).map_err(|e| ferr(format!("not base64: {e}")))?;
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
        self.issue_with_jti(actor, ttl_secs).map(|(t, ttl, _)| (t, ttl))
    }

    /// A token for `actor` with its lifetime and its id (`jti`).
    pub fn issue_with_jti(&self, actor: &Actor, ttl_secs: i64) -> Result<(String, i64, String), KeyError> {
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
        Ok((token, ttl_secs, claims.jti))
    }

    /// The configured lifetime of access tokens, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
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

/// The one algorithm accepted from an external identity provider.
pub fn pinned_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

type Keys = Arc<std::sync::RwLock<HashMap<String, DecodingKey>>>;

/// An issuer whose tokens are accepted: its name and audience, the one
/// algorithm it signs with, and its keys by `kid`.
#[derive(Clone)]
struct Trust {
    alg: Algorithm,
    keys: Keys,
    validation: Validation,
}

impl Trust {
    fn new(keys: Keys, alg: Algorithm, issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        let mut v = Validation::new(alg);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.leeway = leeway_secs;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Trust { alg, keys, validation: v }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok().and_then(|k| k.get(kid).cloned())
    }

    /// Whether `kid` is still one of this issuer's keys (no copy of it).
    fn has_key(&self, kid: &str) -> bool {
        self.keys.read().is_ok_and(|k| k.contains_key(kid))
    }
}

/// Checks tokens: gridwork's own (EdDSA) and, if configured, an external
/// identity provider's, each with its own issuer, audience and pinned
/// algorithm; the key is chosen by `kid`. With a revocation list
/// ([`Verifier::with_revocations`]), [`Caller`] also refuses revoked tokens.
#[derive(Clone)]
pub struct Verifier {
    trusts: Arc<Vec<Trust>>,
    /// Woken by a token whose `kid` no trusted issuer has (yet): the JWKS
    /// refresher fetches early, so a rotated key is picked up at once.
    unknown_kid: Arc<tokio::sync::Notify>,
    revocations: Option<Revocations>,
    /// Tokens whose signature was already checked (see [`Verified`]).
    verified: Arc<Verified>,
}

impl Verifier {
    pub fn new(keys: HashMap<String, DecodingKey>, issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        let keys = Arc::new(std::sync::RwLock::new(keys));
        Verifier {
            trusts: Arc::new(vec![Trust::new(keys, Algorithm::EdDSA, issuer, audience, leeway_secs)]),
            unknown_kid: Arc::new(tokio::sync::Notify::new()),
            revocations: None,
            verified: Arc::new(Verified::default()),
        }
    }

    /// Also refuses tokens on the revocation list (checked by [`Caller`]).
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The revocation list the verifier checks, if any.
    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref()
    }

    /// Also accepts an external provider's tokens, with the keys `external`
    /// holds (see [`JwksRefresher`]).
    pub fn with_external(mut self, external: &ExternalKeys, leeway_secs: u64) -> Self {
        let mut trusts = (*self.trusts).clone();
        trusts.push(Trust::new(external.keys.clone(), external.alg, &external.issuer, &external.audience, leeway_secs));
        self.trusts = Arc::new(trusts);
        self.unknown_kid = external.unknown_kid.clone();
        self
    }

    /// The caller a token stands for.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        self.verify_token(token).map(|(actor, _)| actor)
    }

    /// The caller and the token's id and expiry.
    pub fn verify_token(&self, token: &str) -> Result<(Actor, TokenInfo), ApiError> {
        let now = Utc::now().timestamp();
        if let Some(hit) = self.verified.get(token) {
            // The same checks that do not need the signature again: the
            // key still trusted, the token still in its time window.
            if let Some(trust) = self.trusts.iter().find(|t| t.has_key(&hit.kid)) {
                let leeway = trust.validation.leeway as i64;
                if hit.exp < now - leeway {
                    self.verified.forget(token);
                    return Err(ApiError::unauthorized("token_expired", "the token has expired"));
                }
                if hit.nbf <= now + leeway {
                    return Ok((hit.actor, hit.info));
                }
            } else {
                self.verified.forget(token);
            }
        }
        let (actor, info, entry) = self.verify_signed(token)?;
        self.verified.put(token, entry);
        Ok((actor, info))
    }

    /// The full check: header, key, algorithm, signature and claims.
    fn verify_signed(&self, token: &str) -> Result<(Actor, TokenInfo, VerifiedToken), ApiError> {
        // `alg: none` and unknown algorithms do not even parse.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::unauthorized("invalid_token", "the bearer token is not a JWT"))?;
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("invalid_token", "token has no kid"))?;
        let Some((trust, key)) = self.trusts.iter().find_map(|t| t.key(&kid).map(|k| (t, k))) else {
            self.unknown_kid.notify_one();
            return Err(ApiError::unauthorized("unknown_key", "token signed with an unknown key"));
        };
        // The algorithm is the issuer's, never the token's: an HS256 token
        // "signed" with a public key is refused here.
        if header.alg != trust.alg {
            return Err(ApiError::unauthorized("invalid_token", "token algorithm not accepted"));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &trust.validation).map_err(|e| {
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
        let actor = Actor { id: data.claims.sub, role, scope: data.claims.scope, channel: data.claims.channel };
        let entry =
            VerifiedToken { actor: actor.clone(), info: info.clone(), kid, exp: data.claims.exp, nbf: data.claims.nbf };
        Ok((actor, info, entry))
    }
}

/// What a checked token said, kept by its text.
#[derive(Clone)]
struct VerifiedToken {
    actor: Actor,
    info: TokenInfo,
    kid: String,
    exp: i64,
    nbf: i64,
}

/// Tokens already verified, by their exact text. A phone sends the same
/// token with every report, and checking an Ed25519 signature costs far
/// more than the rest of a request's authentication; the text, byte for
/// byte, was signed, so its claims need not be checked twice. Only tokens
/// that passed are kept; a hit still checks the time window and that the
/// key is still trusted (a key dropped from a JWKS ends its tokens), and
/// revocation is checked on every request by [`Caller`]. Bounded: when
/// full, it starts again empty.
#[derive(Default)]
struct Verified {
    tokens: std::sync::Mutex<HashMap<String, VerifiedToken>>,
}

impl Verified {
    const MAX: usize = 10_000;

    fn get(&self, token: &str) -> Option<VerifiedToken> {
        self.tokens.lock().ok()?.get(token).cloned()
    }

    fn put(&self, token: &str, entry: VerifiedToken) {
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= Self::MAX {
                tokens.clear();
            }
            tokens.insert(token.to_owned(), entry);
        }
    }

    fn forget(&self, token: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(token);
        }
    }
}

/// The keys of an external identity provider, as its JWKS last said.
#[derive(Clone)]
pub struct ExternalKeys {
    pub issuer: String,
    pub audience: String,
    pub alg: Algorithm,
    keys: Keys,
    unknown_kid: Arc<tokio::sync::Notify>,
}

/// Reads a JWKS document: the keys usable with `alg`, by `kid`. Keys for
/// another algorithm, or without a `kid`, are left out.
pub fn keys_from_jwks(json: &str, alg: Algorithm) -> Result<HashMap<String, DecodingKey>, String> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if let Some(a) = jwk.common.key_algorithm {
            if a.to_string() != format!("{alg:?}") {
                continue;
            }
        }
        let fits = matches!(
            (&jwk.algorithm, alg),
            (jsonwebtoken::jwk::AlgorithmParameters::RSA(_), Algorithm::RS256)
                | (jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
                | (jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        if !fits {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
        out.insert(kid, key);
    }
    Ok(out)
}

/// Keeps an external provider's keys current: fetches its JWKS every
/// `every`, and early when a token names an unknown `kid` (at most every
/// 10 s). A failed fetch keeps the keys it had.
pub struct JwksRefresher {
    url: String,
    http: reqwest::Client,
    every: std::time::Duration,
    external: ExternalKeys,
}

impl JwksRefresher {
    /// Fetches the JWKS once (start-up fails if it cannot) and returns the
    /// keys with the refresher that keeps them current.
    pub async fn start(
        url: &str,
        issuer: &str,
        audience: &str,
        alg: Algorithm,
        every: std::time::Duration,
    ) -> anyhow::Result<(ExternalKeys, Self)> {
        let external = ExternalKeys {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            alg,
            keys: Arc::new(std::sync::RwLock::new(HashMap::new())),
            unknown_kid: Arc::new(tokio::sync::Notify::new()),
        };
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
        let me = JwksRefresher { url: url.to_owned(), http, every, external: external.clone() };
        let n = me.fetch().await.map_err(|e| anyhow::anyhow!("external identity provider's JWKS {url}: {e}"))?;
        tracing::info!(url, keys = n, "external identity provider's keys loaded");
        Ok((external, me))
    }

    async fn fetch(&self) -> Result<usize, String> {
        let text = if let Some(path) = self.url.strip_prefix("file://") {
            tokio::fs::read_to_string(path).await.map_err(|e| e.to_string())?
        } else {
            let r = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("HTTP {}", r.status()));
            }
            r.text().await.map_err(|e| e.to_string())?
        };
        let keys = keys_from_jwks(&text, self.external.alg)?;
        if keys.is_empty() {
            return Err(format!("no {:?} key with a kid", self.external.alg));
        }
        let n = keys.len();
        if let Ok(mut k) = self.external.keys.write() {
            *k = keys;
        }
        Ok(n)
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut last = std::time::Instant::now();
        loop {
            let early = self.external.unknown_kid.clone();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
                _ = early.notified() => {
                    // A burst of unknown kids fetches at most every 10 s.
                    let since = last.elapsed();
                    if since < std::time::Duration::from_secs(10) {
                        tokio::time::sleep(std::time::Duration::from_secs(10) - since).await;
                    }
                }
            }
            last = std::time::Instant::now();
            match self.fetch().await {
                Ok(n) => tracing::debug!(url = %self.url, keys = n, "external JWKS refreshed"),
                Err(e) => {
                    tracing::warn!(url = %self.url, error = %e, "external JWKS not refreshed; keeping the keys we had")
                }
            }
        }
    }
}

/// Which token a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub jti: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Extracts the verified caller from `Authorization: Bearer …` with the
/// app's [`Verifier`], refusing revoked tokens.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor, pub TokenInfo);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let verified = verifier
            .as_ref()
            .ok_or_else(|| ApiError::internal(&"no token verifier configured"))
            .and_then(|v| caller(req, v));
        let revocations = verifier.and_then(|v| v.revocations().cloned());
        Box::pin(async move {
            let caller = verified?;
            if let Some(list) = revocations {
                if list.is_revoked(&caller.1.jti).await? {
                    return Err(ApiError::unauthorized("token_revoked", "the token has been revoked"));
                }
            }
            Ok(caller)
        })
    }
}

fn caller(req: &HttpRequest, verifier: &Verifier) -> Result<Caller, ApiError> {
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
    fn a_token_verified_once_is_still_checked_for_its_time_and_key() {
        let iss = issuer();
        let v = iss.verifier(0);
        let actor = Actor { id: "u1".into(), role: Role::GridWorker, scope: "371002003003004".into(), channel: None };
        let (t, _) = iss.issue_with(&actor, 1).unwrap();
        assert_eq!(v.verify(&t).unwrap(), actor);
        // From the verified tokens now: the same answer.
        assert_eq!(v.verify(&t).unwrap(), actor);
        assert!(v.verified.get(&t).is_some());
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(v.verify(&t).unwrap_err().code, "token_expired");
        assert!(v.verified.get(&t).is_none());

        // A key no longer trusted ends its tokens, verified or not.
        let (t, _) = iss.issue(&actor).unwrap();
        assert!(v.verify(&t).is_ok());
        v.trusts[0].keys.write().unwrap().clear();
        assert_eq!(v.verify(&t).unwrap_err().code, "unknown_key");
    }

    #[test]
    fn the_verified_tokens_are_bounded() {
        let iss = issuer();
        let v = iss.verifier(5);
        let actor = Actor { id: "u1".into(), role: Role::GridWorker, scope: "371002003003004".into(), channel: None };
        for _ in 0..Verified::MAX + 5 {
            let (t, _) = iss.issue(&actor).unwrap();
            assert!(v.verify(&t).is_ok());
        }
        let n = v.verified.tokens.lock().unwrap().len();
        assert!((1..=Verified::MAX).contains(&n), "{n}");
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
