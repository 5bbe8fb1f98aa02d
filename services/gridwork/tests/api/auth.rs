//! Identity: every token attack refused over HTTP; an external identity
//! provider's keys from its JWKS, rotated without downtime; refresh tokens
//! rotated on use, and a spent one used again revokes its family.

use crate::helpers;
use std::sync::{Arc, Mutex};

use crate::helpers::{eventually, TestApp};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Utc;
use gridwork_domain::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

fn claims(app: &TestApp, iss: &str, aud: &str, nbf_in: i64, exp_in: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "sub": "worker-1", "role": "grid_worker", "scope": app.demo.demo_grid,
        "iss": iss, "aud": aud, "iat": now, "nbf": now + nbf_in, "exp": now + exp_in,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

async fn status_of(app: &TestApp, token: &str) -> (u16, String) {
    let (s, v) = app.get(token, "/v1/me/reports").await;
    (s, v["code"].as_str().unwrap_or_default().to_owned())
}

#[actix_web::test]
async fn every_token_attack_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = helpers::config(dir.path());
    let app = helpers::spawn_with(cfg.clone()).await;
    let pkcs8 = STANDARD.decode(std::fs::read_to_string(&cfg.auth.signing_key_file).unwrap().trim()).unwrap();
    let real = EncodingKey::from_ed_der(&pkcs8);
    let kid = app.ctx.issuer.kid().to_owned();
    let (iss, aud) = (cfg.auth.issuer.clone(), cfg.auth.audience.clone());

    let good = sign(Algorithm::EdDSA, &kid, &real, &claims(&app, &iss, &aud, 0, 600));
    assert_eq!(status_of(&app, &good).await, (200, String::new()), "the control token works");

    // alg=none, with the real kid and no signature.
    let payload = good.split('.').nth(1).unwrap();
    let none =
        format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)));
    // HS256 "signed" with the public key (as published in the JWKS).
    let jwks = app.get("", "/.well-known/jwks.json").await.1;
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let public = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let hs_raw = sign(Algorithm::HS256, &kid, &EncodingKey::from_secret(&public), &claims(&app, &iss, &aud, 0, 600));
    let hs_text =
        sign(Algorithm::HS256, &kid, &EncodingKey::from_secret(x.as_bytes()), &claims(&app, &iss, &aud, 0, 600));
    // Tampered payload: a grid worker made admin, signature kept.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    c["role"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    let tampered = parts.join(".");
    // Another key under the real kid, and the real key under an unknown kid.
    let other =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new()).unwrap();
    let forged =
        sign(Algorithm::ES256, &kid, &EncodingKey::from_ec_der(other.as_ref()), &claims(&app, &iss, &aud, 0, 600));
    let leeway = cfg.auth.leeway_secs as i64;
    for (what, token, code) in [
        ("alg=none", none, "invalid_token"),
        ("HS256 keyed with the raw public key", hs_raw, "invalid_token"),
        ("HS256 keyed with the JWKS x", hs_text, "invalid_token"),
        ("tampered payload", tampered, "invalid_token"),
        ("another key and algorithm under our kid", forged, "invalid_token"),
        (
            "expired",
            sign(Algorithm::EdDSA, &kid, &real, &claims(&app, &iss, &aud, -7200, -leeway - 60)),
            "token_expired",
        ),
        (
            "not yet valid",
            sign(Algorithm::EdDSA, &kid, &real, &claims(&app, &iss, &aud, leeway + 600, 7200)),
            "token_not_yet_valid",
        ),
        (
            "wrong audience",
            sign(Algorithm::EdDSA, &kid, &real, &claims(&app, &iss, "someone-else", 0, 600)),
            "invalid_token",
        ),
        ("wrong issuer", sign(Algorithm::EdDSA, &kid, &real, &claims(&app, "evil", &aud, 0, 600)), "invalid_token"),
        ("unknown kid", sign(Algorithm::EdDSA, "not-a-key", &real, &claims(&app, &iss, &aud, 0, 600)), "unknown_key"),
        ("garbage", "not.a.jwt".to_owned(), "invalid_token"),
    ] {
        assert_eq!(status_of(&app, &token).await, (401, code.to_owned()), "{what}");
    }
    // Small clock skew is tolerated: expired 5 s ago is still accepted.
    let skewed = sign(Algorithm::EdDSA, &kid, &real, &claims(&app, &iss, &aud, -600, -5));
    assert_eq!(status_of(&app, &skewed).await.0, 200, "within the leeway");
    app.shutdown().await;
}

/// A stand-in identity provider: serves whatever JWKS it is given (not
/// gridwork's, so not from a route table).
#[allow(clippy::disallowed_methods)]
async fn idp(jwks: Arc<Mutex<Value>>) -> (String, actix_web::dev::ServerHandle) {
    let data = actix_web::web::Data::new(jwks);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().app_data(data.clone()).route(
            "/jwks.json",
            actix_web::web::get().to(|j: actix_web::web::Data<Arc<Mutex<Value>>>| async move {
                actix_web::HttpResponse::Ok().json(j.lock().unwrap().clone())
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}/jwks.json"), handle)
}

struct IdpKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn idp_key(kid: &str) -> IdpKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 ‖ x ‖ y
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    IdpKey { kid: kid.to_owned(), encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk }
}

#[actix_web::test]
async fn an_external_providers_keys_rotate_without_downtime() {
    let (a, b) = (idp_key("idp-2026-a"), idp_key("idp-2026-b"));
    let jwks = Arc::new(Mutex::new(json!({"keys": [a.jwk.clone()]})));
    let (url, idp_server) = idp(jwks.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.auth.external_jwks_url = url;
    cfg.auth.external_issuer = "https://idp.example.gov.cn".into();
    cfg.auth.external_audience = "gridwork-mobile".into();
    cfg.auth.external_algorithm = "ES256".into();
    cfg.auth.jwks_refresh_secs = 10;
    let app = helpers::spawn_with(cfg.clone()).await;
    let (iss, aud) = ("https://idp.example.gov.cn", "gridwork-mobile");
    let by = |k: &IdpKey| sign(Algorithm::ES256, &k.kid, &k.encoding, &claims(&app, iss, aud, 0, 600));

    assert_eq!(status_of(&app, &by(&a)).await.0, 200, "the provider's token is accepted");
    // Our own tokens still work beside it.
    assert_eq!(status_of(&app, &app.worker()).await.0, 200);
    // The provider's key under our audience, another algorithm, or its
    // audience with our issuer: refused.
    let wrong_aud = sign(Algorithm::ES256, &a.kid, &a.encoding, &claims(&app, iss, "gridwork", 0, 600));
    assert_eq!(status_of(&app, &wrong_aud).await, (401, "invalid_token".into()));
    let hs = sign(Algorithm::HS256, &a.kid, &EncodingKey::from_secret(b"x"), &claims(&app, iss, aud, 0, 600));
    assert_eq!(status_of(&app, &hs).await, (401, "invalid_token".into()));

    // Rotation, step 1: the provider publishes B beside A. A token by B is
    // unknown at first, makes gridwork fetch early, then is accepted; A
    // keeps working throughout.
    *jwks.lock().unwrap() = json!({"keys": [a.jwk.clone(), b.jwk.clone()]});
    eventually("B accepted after the early fetch", || async {
        (status_of(&app, &by(&b)).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(status_of(&app, &by(&a)).await.0, 200, "A still accepted while both are published");
    // Step 2: A is retired; within a refresh it is refused, B still works.
    *jwks.lock().unwrap() = json!({"keys": [b.jwk.clone()]});
    eventually("A refused once retired", || async {
        (status_of(&app, &by(&a)).await == (401, "unknown_key".into())).then_some(())
    })
    .await;
    assert_eq!(status_of(&app, &by(&b)).await.0, 200);
    // The provider down: the keys gridwork has keep working.
    idp_server.stop(true).await;
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert_eq!(status_of(&app, &by(&b)).await.0, 200, "keys kept when a fetch fails");
    app.shutdown().await;
}

#[actix_web::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let login = json!({"username": "worker-1", "password": "gridwork-demo"});
    let (s, first) = app.post("", "/v1/auth/token", &login).await;
    assert_eq!(s, 200, "{first}");
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    assert!(first["refresh_expires_in"].as_i64().unwrap() > 0);

    // Rotation: a new pair; the new access token works.
    let refresh = |r: &str| json!({"grant_type": "refresh_token", "refresh_token": r});
    let (s, second) = app.post("", "/v1/auth/token", &refresh(&r1)).await;
    assert_eq!(s, 200, "{second}");
    let (a2, r2) =
        (second["access_token"].as_str().unwrap().to_owned(), second["refresh_token"].as_str().unwrap().to_owned());
    assert_ne!(r1, r2);
    assert_eq!(status_of(&app, &a2).await.0, 200);
    let (s, third) = app.post("", "/v1/auth/token", &refresh(&r2)).await;
    assert_eq!(s, 200, "{third}");
    let (a3, r3) =
        (third["access_token"].as_str().unwrap().to_owned(), third["refresh_token"].as_str().unwrap().to_owned());

    // A spent token used again (a thief, or the victim after the thief):
    // refused, and the whole family with the access tokens issued from it.
    let (s, e) = app.post("", "/v1/auth/token", &refresh(&r1)).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("refresh_token_reused")), "{e}");
    let (s, e) = app.post("", "/v1/auth/token", &refresh(&r3)).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("refresh_token_revoked")), "{e}");
    assert_eq!(status_of(&app, &a3).await, (401, "token_revoked".into()));
    assert_eq!(status_of(&app, &a2).await, (401, "token_revoked".into()));
    // Another sign-in is a new family, unaffected.
    let (s, other) = app.post("", "/v1/auth/token", &login).await;
    assert_eq!(s, 200);
    assert_eq!(status_of(&app, other["access_token"].as_str().unwrap()).await.0, 200);

    // Bad requests say what is wrong.
    let (s, e) = app.post("", "/v1/auth/token", &refresh("not-a-token")).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_grant")));
    let (s, e) = app.post("", "/v1/auth/token", &json!({"grant_type": "refresh_token"})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("refresh_token")));
    let (s, e) = app.post("", "/v1/auth/token", &json!({"grant_type": "client_credentials"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("unsupported_grant_type")));
    let (s, e) = app.post("", "/v1/auth/token", &json!({"username": "worker-1", "password": "x", "extra": 1})).await;
    assert_eq!(s, 400, "unknown fields refused: {e}");

    // Pruning: rows of expired refresh tokens go, unexpired ones stay.
    use gridwork_storage::entity::refresh_token;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let rows = refresh_token::Entity::find().count(&app.ctx.db).await.unwrap();
    assert_eq!(rows, 4, "three of the first family, one of the second sign-in");
    let now = chrono::Utc::now();
    assert_eq!(gridwork_intake::auth::session::prune_expired(&app.ctx.db, now).await.unwrap(), 0);
    let ttl = other["refresh_expires_in"].as_i64().unwrap();
    let later = now + chrono::Duration::seconds(ttl + 60);
    assert_eq!(gridwork_intake::auth::session::prune_expired(&app.ctx.db, later).await.unwrap(), rows);
    app.shutdown().await;
}

async fn sign_in(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    app.post("", "/v1/auth/token", &json!({"username": user, "password": password})).await
}

fn refresh_with(r: &Value) -> Value {
    json!({"grant_type": "refresh_token", "refresh_token": r["refresh_token"].as_str().unwrap()})
}

async fn patch(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = app.http.patch(format!("{}{path}", app.base)).bearer_auth(token).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Issue 14, item 2: logging out ends the session — the refresh token of
/// that sign-in no longer renews it — and the database holds the
/// revocation when the cache forgets it.
#[actix_web::test]
async fn logging_out_revokes_the_refresh_family() {
    let dir = tempfile::tempdir().unwrap();
    logging_out(helpers::spawn(dir.path()).await).await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _pg) = helpers::on_postgres_and_redis(dir.path()).await;
    logging_out(helpers::spawn_with(cfg).await).await;
}

async fn logging_out(app: TestApp) {
    let (s, first) = sign_in(&app, "worker-1", "gridwork-demo").await;
    assert_eq!(s, 200, "{first}");
    // Renewed once: the family has two generations.
    let (s, second) = app.post("", "/v1/auth/token", &refresh_with(&first)).await;
    assert_eq!(s, 200, "{second}");
    let access = second["access_token"].as_str().unwrap().to_owned();
    let (s, other) = sign_in(&app, "worker-1", "gridwork-demo").await;
    assert_eq!(s, 200, "{other}");

    let (s, out) = app.post(&access, "/v1/auth/revoke", &json!({})).await;
    assert_eq!(s, 200, "{out}");
    let (s, e) = app.post("", "/v1/auth/token", &refresh_with(&second)).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("refresh_token_revoked")), "the refresh token still renews: {e}");
    assert_eq!(status_of(&app, &access).await, (401, "token_revoked".into()));
    // The first generation's access token went with its family.
    assert_eq!(status_of(&app, first["access_token"].as_str().unwrap()).await, (401, "token_revoked".into()));
    // Another sign-in of the same user is another session: untouched.
    assert_eq!(status_of(&app, other["access_token"].as_str().unwrap()).await.0, 200);
    let (s, _) = app.post("", "/v1/auth/token", &refresh_with(&other)).await;
    assert_eq!(s, 200);

    // The cache forgets (a flushed Redis): the database still refuses.
    let jti = |t: &str| -> String {
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    for t in [&access, first["access_token"].as_str().unwrap()] {
        app.ctx.cache.del(&format!("auth:revoked:{}", jti(t))).await.unwrap();
        app.ctx.cache.del(&format!("auth:ok:{}", jti(t))).await.unwrap();
        assert_eq!(status_of(&app, t).await, (401, "token_revoked".into()), "revoked with the cache flushed");
    }
    app.shutdown().await;
}

/// Issue 14, item 2: an admin changes a user's role, scope or channel, or
/// deactivates them, within the admin's jurisdiction; each change revokes
/// the user's sessions at once, and a deactivated user can neither sign in
/// nor renew.
#[actix_web::test]
async fn changing_or_deactivating_a_user_revokes_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    user_changes(helpers::spawn(dir.path()).await).await;
    // PostgreSQL: sign-in and renewal hold the user row the change locks.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _pg) = helpers::on_postgres_and_redis(dir.path()).await;
    user_changes(helpers::spawn_with(cfg).await).await;
}

async fn user_changes(app: TestApp) {
    let admin = app.as_role(Role::Admin);
    let centre = app.demo.demo_centre.clone();
    let county = centre[..6].to_owned();

    // A mediator moves to another channel: the old session ends.
    let (s, m) = sign_in(&app, "mediator-1", "gridwork-demo").await;
    assert_eq!(s, 200, "{m}");
    let m_access = m["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&m_access, "/v1/cases").await.0, 200);
    let (s, v) = patch(&app, &admin, "/v1/users/mediator-1", &json!({"channel": "legal_aid"})).await;
    assert_eq!(s, 200, "the admin's user endpoint: {v}");
    assert_eq!((v["channel"].as_str(), v["revoked_access_tokens"].as_u64()), (Some("legal_aid"), Some(1)), "{v}");
    assert_eq!(app.get(&m_access, "/v1/cases").await.0, 401, "the old channel's token is revoked");
    let (s, e) = app.post("", "/v1/auth/token", &refresh_with(&m)).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("refresh_token_revoked")), "{e}");
    let (s, m2) = sign_in(&app, "mediator-1", "gridwork-demo").await;
    assert_eq!(s, 200, "{m2}");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(m2["access_token"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["channel"], "legal_aid", "a new sign-in carries the new channel");

    // A dispatcher's scope changes: revoked too.
    let (s, d) = sign_in(&app, "dispatcher-1", "gridwork-demo").await;
    assert_eq!(s, 200, "{d}");
    let (s, v) = patch(&app, &admin, "/v1/users/dispatcher-1", &json!({"scope": county})).await;
    assert_eq!((s, v["scope"].as_str()), (200, Some(county.as_str())), "{v}");
    assert_eq!(status_of(&app, d["access_token"].as_str().unwrap()).await, (401, "token_revoked".into()));
    // Nothing changes: nothing is revoked.
    let (s, d2) = sign_in(&app, "dispatcher-1", "gridwork-demo").await;
    assert_eq!(s, 200);
    let (s, v) = patch(&app, &admin, "/v1/users/dispatcher-1", &json!({"scope": county})).await;
    assert_eq!((s, v["revoked_access_tokens"].as_u64()), (200, Some(0)), "{v}");
    assert_eq!(status_of(&app, d2["access_token"].as_str().unwrap()).await.0, 200);

    // A grid worker is deactivated: every session ends, no sign-in, no renewal.
    let (_, w1) = sign_in(&app, "worker-1", "gridwork-demo").await;
    let (_, w2) = sign_in(&app, "worker-1", "gridwork-demo").await;
    let (s, v) = patch(&app, &admin, "/v1/users/worker-1", &json!({"active": false})).await;
    assert_eq!((s, v["active"].as_bool(), v["revoked_access_tokens"].as_u64()), (200, Some(false), Some(2)), "{v}");
    for w in [&w1, &w2] {
        assert_eq!(status_of(&app, w["access_token"].as_str().unwrap()).await, (401, "token_revoked".into()));
        let (s, e) = app.post("", "/v1/auth/token", &refresh_with(w)).await;
        assert_eq!((s, e["code"].as_str()), (401, Some("refresh_token_revoked")), "{e}");
    }
    let (s, e) = sign_in(&app, "worker-1", "gridwork-demo").await;
    assert_eq!((s, e["code"].as_str()), (401, Some("account_deactivated")), "{e}");
    let (s, _) = patch(&app, &admin, "/v1/users/worker-1", &json!({"active": true})).await;
    assert_eq!(s, 200);
    assert_eq!(sign_in(&app, "worker-1", "gridwork-demo").await.0, 200, "reactivated");

    // Within the admin's jurisdiction only.
    let rongcheng_admin = app.token("rc-admin", Role::Admin, "371082");
    let (s, e) = patch(&app, &rongcheng_admin, "/v1/users/analyst-1", &json!({"active": false})).await;
    assert_eq!(s, 404, "a user outside the admin's jurisdiction does not exist for them: {e}");
    let (s, e) = patch(&app, &rongcheng_admin, "/v1/users/dispatcher-1", &json!({"active": false})).await;
    assert_eq!(s, 404, "{e}");
    let county_admin = app.token("hc-admin", Role::Admin, &county);
    let (s, e) = patch(&app, &county_admin, "/v1/users/dispatcher-1", &json!({"scope": "371082001"})).await;
    assert_eq!(s, 403, "not into another jurisdiction: {e}");
    let (s, e) = patch(&app, &county_admin, "/v1/users/admin", &json!({"active": false})).await;
    assert_eq!(s, 404, "a scoped admin does not see the admin without scope: {e}");
    let (s, e) = patch(&app, &app.dispatcher(), "/v1/users/worker-1", &json!({"active": false})).await;
    assert_eq!(s, 403, "only admins: {e}");
    // Bad changes say what is wrong, and change nothing.
    for (body, code, field) in [
        (json!({"role": "boss"}), "invalid_role", "role"),
        (json!({"scope": "nowhere"}), "invalid_scope", "scope"),
        (json!({"scope": ""}), "invalid_scope", "scope"),
        (json!({"channel": "legal_aid"}), "invalid_channel", "channel"),
        (json!({"role": "mediator"}), "missing_field", "channel"),
        (json!({"role": "mediator", "channel": "tea"}), "invalid_channel", "channel"),
    ] {
        let (s, e) = patch(&app, &admin, "/v1/users/dispatcher-1", &body).await;
        assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some(code), Some(field)), "{body}: {e}");
        assert!(e["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let (s, e) = patch(&app, &admin, "/v1/users/nobody", &json!({"active": false})).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    app.shutdown().await;
}

/// Issue 14, item 5: failed password sign-ins are throttled per username
/// and per client address (429 with Retry-After, whatever the password),
/// in Redis or, while Redis is down, in the process.
#[actix_web::test]
async fn failed_sign_ins_are_throttled_per_user_and_per_address() {
    for redis in [helpers::redis_url(), "redis://127.0.0.1:1".to_string()] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = helpers::config(dir.path());
        cfg.cache.url = redis.clone();
        cfg.cache.key_prefix = format!("gridwork-test:{}:", uuid::Uuid::new_v4());
        let app = helpers::spawn_with(cfg).await;
        // The defaults: 5 failures per username, 50 per address, per 15 minutes.
        for i in 0..5 {
            let (s, e) = sign_in(&app, "worker-1", "wrong").await;
            assert_eq!((s, e["code"].as_str()), (401, Some("invalid_credentials")), "{redis}: failure {i}");
        }
        let r = app
            .http
            .post(format!("{}/v1/auth/token", app.base))
            .json(&json!({"username": "worker-1", "password": "gridwork-demo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{redis}: the 6th sign-in after 5 failures, even with the right password");
        let after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&after), "Retry-After {after}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "signin_throttled", "{e}");
        assert!(e["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
        // Another user from the same address is not held up by worker-1's failures …
        assert_eq!(sign_in(&app, "dispatcher-1", "gridwork-demo").await.0, 200, "{redis}");
        // … until the address has failed 50 times (unknown names count too).
        for i in 5..50 {
            let (s, _) = sign_in(&app, &format!("guess-{i}"), "wrong").await;
            assert_eq!(s, 401, "{redis}: failure {i}");
        }
        let (s, e) = sign_in(&app, "dispatcher-1", "gridwork-demo").await;
        assert_eq!((s, e["code"].as_str()), (429, Some("signin_throttled")), "{redis}: the address is throttled");
        // Tokens already issued keep working; refresh is not a password sign-in.
        assert_eq!(status_of(&app, &app.worker()).await.0, 200);
        app.shutdown().await;
    }
}

/// Issue 14, item 5: Argon2 work is bounded — with one turn and a short
/// wait, concurrent sign-ins beyond it get 503 `signin_busy` instead of
/// each hashing at once.
#[actix_web::test]
async fn argon2_work_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.auth.signin_concurrency = 1;
    cfg.auth.signin_wait_ms = 10;
    cfg.auth.signin_max_failures_per_address = 1000;
    let app = helpers::spawn_with(cfg).await;
    let tries = (0..12).map(|i| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/auth/token"))
                .json(&json!({"username": format!("someone-{i}"), "password": "wrong"}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let e: Value = r.json().await.unwrap();
            (s, e["code"].as_str().unwrap_or_default().to_owned(), retry)
        }
    });
    let answers = futures::future::join_all(tries).await;
    assert!(
        answers
            .iter()
            .all(|(s, c, _)| (*s, c.as_str()) == (401, "invalid_credentials")
                || (*s, c.as_str()) == (503, "signin_busy")),
        "{answers:?}"
    );
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "12 sign-ins at once with one Argon2 turn: {answers:?}");
    assert!(busy.iter().all(|(_, _, r)| r.as_deref() == Some("1")), "{busy:?}");
    app.shutdown().await;
}

/// A browser page (the web console) asks for its refresh token in a cookie
/// (`X-Refresh-Cookie: 1`): the body then has none, the cookie is HttpOnly,
/// `SameSite=Strict` and sent to `/v1/auth` only; a renewal reads it from
/// the cookie (only when asked to: a cookie alone renews nothing), rotates
/// it, refuses the spent one, and signing out clears it.
#[actix_web::test]
async fn a_browser_keeps_its_refresh_token_in_an_httponly_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let url = format!("{}/v1/auth/token", app.base);
    let sign_in = app
        .http
        .post(&url)
        .header("X-Refresh-Cookie", "1")
        .json(&json!({"grant_type": "password", "username": "dispatcher-1", "password": "gridwork-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), 200);
    let cookie = sign_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body: Value = sign_in.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "the refresh token must not be readable by page scripts: {body}");
    assert!(body["access_token"].is_string(), "{body}");
    for part in ["gw_refresh=", "HttpOnly", "SameSite=Strict", "Path=/v1/auth", "Max-Age="] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: no Secure flag ({cookie})");
    let value = cookie.split(';').next().unwrap().trim_start_matches("gw_refresh=").to_owned();

    let renew = |value: String, header: bool| {
        let mut r = app.http.post(&url).header("Cookie", format!("gw_refresh={value}"));
        if header {
            r = r.header("X-Refresh-Cookie", "1");
        }
        r.json(&json!({"grant_type": "refresh_token"})).send()
    };
    // The cookie alone (no header: a form another site made the browser
    // send, say) renews nothing.
    let r = renew(value.clone(), false).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = renew(value.clone(), true).await.unwrap();
    assert_eq!(r.status(), 200);
    let next = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let renewed: Value = r.json().await.unwrap();
    assert!(renewed.get("refresh_token").is_none(), "{renewed}");
    let next_value = next.split(';').next().unwrap().trim_start_matches("gw_refresh=").to_owned();
    assert_ne!(next_value, value, "rotated");
    // Spent: using it again revokes the family.
    let r = renew(value, true).await.unwrap();
    assert_eq!(r.status(), 401);

    // Signing out clears the cookie.
    let (s, _) = sign_in_and_out(&app).await;
    assert_eq!(s, 200);
    app.shutdown().await;
}

/// Signs in with a cookie and out again; the sign-out's `Set-Cookie`.
async fn sign_in_and_out(app: &TestApp) -> (u16, String) {
    let url = format!("{}/v1/auth/token", app.base);
    let r = app
        .http
        .post(&url)
        .header("X-Refresh-Cookie", "1")
        .json(&json!({"username": "dispatcher-1", "password": "gridwork-demo"}))
        .send()
        .await
        .unwrap();
    let access = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let out = app.http.post(format!("{}/v1/auth/revoke", app.base)).bearer_auth(&access).send().await.unwrap();
    let status = out.status().as_u16();
    let cleared = out.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.starts_with("gw_refresh=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/v1/auth"), "{cleared}");
    (status, cleared)
}
