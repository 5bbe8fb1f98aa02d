//! Password sign-in's guards (ADR 0025): failed sign-ins are counted per
//! username and per client address in fixed windows (intake's rate-limit
//! windows, in the cache: Redis, or this process's memory while Redis is
//! unavailable), and past a threshold sign-ins answer 429 with
//! `Retry-After` before any hashing; Argon2 verification (about 19 MiB and
//! tens of milliseconds each) runs at most `auth.signin_concurrency` at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use gridwork_platform::cache::{count_of, Cache, Fallback};
use gridwork_platform::config::Config;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::IntakeError;
use crate::limits::window;

pub struct Signin {
    counters: Fallback,
    hashes: Arc<Semaphore>,
    wait: Duration,
    window_secs: i64,
    max_per_user: u64,
    max_per_address: u64,
    trusted_proxies: Vec<IpAddr>,
}

impl Signin {
    pub fn new(config: &Config, cache: Arc<dyn Cache>) -> Self {
        let a = &config.auth;
        Signin {
            counters: Fallback::new(cache, 100_000),
            hashes: Arc::new(Semaphore::new(a.signin_concurrency)),
            wait: Duration::from_millis(a.signin_wait_ms),
            window_secs: a.signin_window_secs as i64,
            max_per_user: a.signin_max_failures_per_user,
            max_per_address: a.signin_max_failures_per_address,
            // Validated at start-up.
            trusted_proxies: config.http.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect(),
        }
    }

    /// The address a sign-in comes from: the connection's peer, or, when
    /// that is a configured proxy (`http.trusted_proxies`), the last
    /// address its `X-Forwarded-For` names.
    pub fn client_address(&self, req: &HttpRequest) -> String {
        let peer = req.peer_addr().map(|a| a.ip());
        if let Some(ip) = peer.filter(|ip| self.trusted_proxies.contains(ip)) {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            return forwarded.unwrap_or(ip).to_string();
        }
        peer.map(|ip| ip.to_string()).unwrap_or_default()
    }

    fn keys(&self, username: &str, client: &str) -> (String, String, u64) {
        let (w, left) = window(chrono::Utc::now().timestamp(), self.window_secs);
        // Hashed: bounded keys, and no account name in the cache.
        let name = hex::encode(&Sha256::digest(username.as_bytes())[..16]);
        (format!("intake:signin:user:{name}:{w}"), format!("intake:signin:addr:{client}:{w}"), left)
    }

    /// 429 when this username or this address has failed too often in the
    /// current window.
    pub async fn check(&self, username: &str, client: &str) -> Result<(), IntakeError> {
        let (user, addr, left) = self.keys(username, client);
        let count = |v: Result<Option<Vec<u8>>, _>| v.ok().flatten().map(|v| count_of(&v)).unwrap_or(0);
        let by_user = count(self.counters.get(&user).await);
        let by_addr = count(self.counters.get(&addr).await);
        if by_user >= self.max_per_user || by_addr >= self.max_per_address {
            tracing::warn!(by_user, by_addr, "password sign-in throttled");
            return Err(IntakeError::SigninThrottled(left));
        }
        Ok(())
    }

    /// Counts a failed sign-in against the username and the address.
    pub async fn failed(&self, username: &str, client: &str) {
        let (user, addr, left) = self.keys(username, client);
        let ttl = Duration::from_secs(left + 1);
        let _ = self.counters.incr(&user, ttl).await;
        let _ = self.counters.incr(&addr, ttl).await;
    }

    /// A successful sign-in clears the username's failures (not the
    /// address's: one success from an address says nothing of its others).
    pub async fn succeeded(&self, username: &str) {
        let (user, _, _) = self.keys(username, "");
        let _ = self.counters.del(&user).await;
    }

    /// Verifies `password` against the Argon2 hash `stored`, in turn with at
    /// most `auth.signin_concurrency` others; 503 with `Retry-After` when no
    /// turn comes within `auth.signin_wait_ms`.
    pub async fn verify(&self, stored: String, password: String) -> Result<bool, IntakeError> {
        let permit = match tokio::time::timeout(self.wait, self.hashes.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(IntakeError::SigninBusy),
        };
        let ok = actix_web::web::block(move || {
            let _turn = permit;
            PasswordHash::new(&stored)
                .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
                .unwrap_or(false)
        })
        .await
        .map_err(|e| IntakeError::Internal(e.to_string()))?;
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_turns_are_bounded() {
        let mut cfg = Config::default();
        cfg.auth.signin_concurrency = 1;
        cfg.auth.signin_wait_ms = 50;
        let s = Signin::new(&cfg, Arc::new(gridwork_platform::cache::MemoryCache::new("", 10)));
        let held = s.hashes.clone().acquire_owned().await.unwrap();
        assert!(matches!(s.verify("x".into(), "y".into()).await, Err(IntakeError::SigninBusy)));
        drop(held);
        assert!(!s.verify("not a hash".into(), "y".into()).await.unwrap(), "a turn once one is free");
    }
}
