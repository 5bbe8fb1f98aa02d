//! The cache seam: a shared, fast, expiring key-value store. In-process
//! (`memory://`) in the embedded default; Redis in production. The cache only
//! ever saves work: losing it costs speed, never correctness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the {backend} cache is not available in this build: {hint}")]
    FeatureNotEnabled { backend: &'static str, hint: &'static str },
    #[error("unsupported cache URL {0:?}: expected memory:// or redis://…")]
    UnsupportedUrl(String),
    #[error("cache: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    async fn del(&self, key: &str) -> Result<(), CacheError>;
    /// Sets `key` only if it is absent; `true` when this call set it.
    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;
    /// Adds one to the counter at `key` (created with lifetime `ttl`) and
    /// returns the new value.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;
    fn describe(&self) -> String;
}

/// In-process cache with expiry and a size bound.
pub struct MemoryCache {
    prefix: String,
    max_entries: usize,
    map: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryCache {
    pub fn new(prefix: &str, max_entries: usize) -> Self {
        MemoryCache { prefix: prefix.to_owned(), max_entries, map: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let k = format!("{}{key}", self.prefix);
        let mut map = self.map.lock().map_err(|_| CacheError::Backend("poisoned".into()))?;
        match map.get(&k) {
            Some((v, until)) if *until > Instant::now() => Ok(Some(v.clone())),
            Some(_) => {
                map.remove(&k);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let mut map = self.map.lock().map_err(|_| CacheError::Backend("poisoned".into()))?;
        if map.len() >= self.max_entries {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(format!("{}{key}", self.prefix), (value.to_vec(), Instant::now() + ttl));
        Ok(())
    }

    async fn del(&self, key: &str) -> Result<(), CacheError> {
        let mut map = self.map.lock().map_err(|_| CacheError::Backend("poisoned".into()))?;
        map.remove(&format!("{}{key}", self.prefix));
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let k = format!("{}{key}", self.prefix);
        let mut map = self.map.lock().map_err(|_| CacheError::Backend("poisoned".into()))?;
        let now = Instant::now();
        match map.get(&k) {
            Some((_, until)) if *until > now => Ok(false),
            _ => {
                map.insert(k, (value.to_vec(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let k = format!("{}{key}", self.prefix);
        let mut map = self.map.lock().map_err(|_| CacheError::Backend("poisoned".into()))?;
        let now = Instant::now();
        // Decimal text, as Redis keeps a counter, so `get` reads both alike.
        let entry = map.entry(k).or_insert_with(|| (b"0".to_vec(), now + ttl));
        if entry.1 <= now {
            *entry = (b"0".to_vec(), now + ttl);
        }
        let n = count_of(&entry.0) + 1;
        entry.0 = n.to_string().into_bytes();
        Ok(n)
    }

    fn describe(&self) -> String {
        "in-process cache (memory://)".into()
    }
}

/// A counter's value as `get` returns it (decimal text; absent or
/// unreadable = 0).
pub fn count_of(value: &[u8]) -> u64 {
    std::str::from_utf8(value).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// A shared cache with an in-process stand-in: every call goes to `shared`
/// (Redis) and, when that fails, to this process's own memory. For what
/// must hold even while Redis is down, per replica (sign-in throttling);
/// the stand-in's values are not merged back when Redis returns.
pub struct Fallback {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
}

impl Fallback {
    pub fn new(shared: Arc<dyn Cache>, max_local_entries: usize) -> Self {
        Fallback { shared, local: MemoryCache::new("", max_local_entries) }
    }
}

#[async_trait]
impl Cache for Fallback {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self.shared.get(key).await {
            Ok(v) => Ok(v),
            Err(_) => self.local.get(key).await,
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        match self.shared.set(key, value, ttl).await {
            Ok(()) => Ok(()),
            Err(_) => self.local.set(key, value, ttl).await,
        }
    }

    async fn del(&self, key: &str) -> Result<(), CacheError> {
        // Both: a value the stand-in holds from an outage must not outlive a delete.
        let local = self.local.del(key).await;
        self.shared.del(key).await.or(local)
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        match self.shared.set_nx(key, value, ttl).await {
            Ok(v) => Ok(v),
            Err(_) => self.local.set_nx(key, value, ttl).await,
        }
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        match self.shared.incr(key, ttl).await {
            Ok(n) => Ok(n),
            Err(_) => self.local.incr(key, ttl).await,
        }
    }

    fn describe(&self) -> String {
        format!("{} (in-process while it is unavailable)", self.shared.describe())
    }
}

pub fn connect(url: &str, prefix: &str) -> Result<Arc<dyn Cache>, CacheError> {
    match url.split("://").next().unwrap_or_default() {
        "memory" => Ok(Arc::new(MemoryCache::new(prefix, 100_000))),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Arc::new(redis_cache::RedisCache::new(url, prefix)?)),
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(CacheError::FeatureNotEnabled {
            backend: "redis",
            hint: "this binary was built without the `redis` feature of gridwork-platform",
        }),
        _ => Err(CacheError::UnsupportedUrl(url.to_owned())),
    }
}

#[cfg(feature = "redis")]
mod redis_cache {
    //! Redis behind the cache seam. The connection is made lazily and
    //! re-made after failures, so a Redis that is down (at start or later)
    //! makes the cache miss — slower, never wrong — instead of failing requests.

    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use redis::aio::ConnectionManager;
    use redis::AsyncCommands;
    use tokio::sync::Mutex;

    use super::{Cache, CacheError};

    pub struct RedisCache {
        client: redis::Client,
        prefix: String,
        conn: Mutex<Option<ConnectionManager>>,
        /// After a failed connect, do not try again before this instant.
        backoff_until: Mutex<Option<Instant>>,
        url: String,
    }

    impl RedisCache {
        pub fn new(url: &str, prefix: &str) -> Result<Self, CacheError> {
            let client = redis::Client::open(url).map_err(|e| CacheError::Backend(e.to_string()))?;
            Ok(RedisCache {
                client,
                prefix: prefix.to_owned(),
                conn: Mutex::new(None),
                backoff_until: Mutex::new(None),
                url: url.to_owned(),
            })
        }

        async fn conn(&self) -> Result<ConnectionManager, CacheError> {
            if let Some(c) = self.conn.lock().await.as_ref() {
                return Ok(c.clone());
            }
            if let Some(until) = *self.backoff_until.lock().await {
                if Instant::now() < until {
                    return Err(CacheError::Backend("redis unavailable (backing off)".into()));
                }
            }
            let made = tokio::time::timeout(Duration::from_secs(2), ConnectionManager::new(self.client.clone())).await;
            match made {
                Ok(Ok(c)) => {
                    *self.conn.lock().await = Some(c.clone());
                    *self.backoff_until.lock().await = None;
                    Ok(c)
                }
                Ok(Err(e)) => {
                    *self.backoff_until.lock().await = Some(Instant::now() + Duration::from_secs(5));
                    Err(CacheError::Backend(e.to_string()))
                }
                Err(_) => {
                    *self.backoff_until.lock().await = Some(Instant::now() + Duration::from_secs(5));
                    Err(CacheError::Backend("redis connect timed out".into()))
                }
            }
        }

        fn key(&self, key: &str) -> String {
            format!("{}{key}", self.prefix)
        }
    }

    fn backend(e: redis::RedisError) -> CacheError {
        CacheError::Backend(e.to_string())
    }

    /// Bounds every command, so a hung Redis costs at most this much per call.
    const CALL: Duration = Duration::from_millis(500);

    /// After a connection broke, calls fail at once for this long before a
    /// fresh connection is tried.
    const BROKEN_BACKOFF: Duration = Duration::from_millis(500);

    impl RedisCache {
        /// Runs one command within `CALL`. A connection that broke (the
        /// server went away, refused, or did not answer in time) is dropped,
        /// and the next call after a short back-off makes a fresh one: the
        /// connection manager's own reconnection gave up for good when Redis
        /// stayed down longer than its retries, and every call then waited
        /// out its bound (the fault suite's Redis restart).
        async fn bounded<T>(
            &self,
            f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
        ) -> Result<T, CacheError> {
            match tokio::time::timeout(CALL, f).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
                        self.broken().await;
                    }
                    Err(backend(e))
                }
                Err(_) => {
                    self.broken().await;
                    Err(CacheError::Backend("redis call timed out".into()))
                }
            }
        }

        async fn broken(&self) {
            *self.conn.lock().await = None;
            *self.backoff_until.lock().await = Some(Instant::now() + BROKEN_BACKOFF);
        }
    }

    #[async_trait]
    impl Cache for RedisCache {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
            let mut c = self.conn().await?;
            self.bounded(c.get::<_, Option<Vec<u8>>>(self.key(key))).await
        }

        async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
            let mut c = self.conn().await?;
            let secs = ttl.as_secs().max(1);
            self.bounded(c.set_ex::<_, _, ()>(self.key(key), value, secs)).await
        }

        async fn del(&self, key: &str) -> Result<(), CacheError> {
            let mut c = self.conn().await?;
            self.bounded(c.del::<_, ()>(self.key(key))).await
        }

        async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
            let mut c = self.conn().await?;
            let ms = ttl.as_millis().max(1) as u64;
            let set: Option<String> = self
                .bounded(
                    redis::cmd("SET").arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(ms).query_async(&mut c),
                )
                .await?;
            Ok(set.is_some())
        }

        async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
            let mut c = self.conn().await?;
            let k = self.key(key);
            let (n, _): (u64, bool) = self
                .bounded(
                    redis::pipe().atomic().incr(&k, 1u64).expire(&k, ttl.as_secs().max(1) as i64).query_async(&mut c),
                )
                .await?;
            Ok(n)
        }

        fn describe(&self) -> String {
            let host = self.url.rsplit('@').next().unwrap_or(&self.url);
            format!("redis ({host})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expiry_and_bound() {
        let c = MemoryCache::new("t:", 2);
        c.set("a", b"1", Duration::from_secs(60)).await.unwrap();
        c.set("b", b"2", Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(c.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(c.get("b").await.unwrap(), None);
        c.set("c", b"3", Duration::from_secs(60)).await.unwrap();
        c.set("d", b"4", Duration::from_secs(60)).await.unwrap();
        assert_eq!(c.get("d").await.unwrap(), Some(b"4".to_vec()));
        let m = MemoryCache::new("t:", 100);
        assert!(m.set_nx("l", b"a", Duration::from_secs(60)).await.unwrap());
        assert!(!m.set_nx("l", b"b", Duration::from_secs(60)).await.unwrap());
        assert_eq!(m.incr("n", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(m.incr("n", Duration::from_secs(60)).await.unwrap(), 2);
        assert!(connect("mongodb://127.0.0.1", "x").is_err());
        assert_eq!(m.get("n").await.unwrap().map(|v| count_of(&v)), Some(2), "a counter reads as its value");
    }

    /// A Redis of the test's own on a free port (never the shared one).
    #[cfg(feature = "redis")]
    fn own_redis(port: u16) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// The fault suite's second finding: after Redis was stopped and started
    /// again, every request of intake took seconds for good — the cached
    /// connection never came back and each call waited out its bound. A
    /// broken connection is dropped; calls are answered quickly while Redis
    /// is down and succeed again soon after it is back.
    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_restarted_redis_is_used_again_and_calls_stay_quick_meanwhile() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = own_redis(port);
        let c = connect(&format!("redis://127.0.0.1:{port}"), "t:").unwrap();
        c.set("k", b"v", Duration::from_secs(60)).await.unwrap();
        server.kill().unwrap();
        server.wait().unwrap();
        // Down: errors, each quickly.
        for _ in 0..20 {
            let t = std::time::Instant::now();
            assert!(c.get("k").await.is_err());
            assert!(t.elapsed() < Duration::from_millis(900), "a call while Redis is down took {:?}", t.elapsed());
        }
        let mut server = own_redis(port);
        // Back (empty): within a few seconds calls succeed again, and then
        // every call does.
        let mut ok = false;
        for _ in 0..100 {
            if c.set("k2", b"w", Duration::from_secs(60)).await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "Redis is used again after it came back");
        for i in 0..50 {
            assert_eq!(c.get("k2").await.unwrap(), Some(b"w".to_vec()), "call {i} after the restart");
        }
        server.kill().unwrap();
        server.wait().unwrap();
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn fallback_counts_in_process_while_redis_is_down() {
        let down = connect("redis://127.0.0.1:1", "x:").unwrap();
        let f = Fallback::new(down, 100);
        assert_eq!(f.incr("n", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(f.incr("n", Duration::from_secs(60)).await.unwrap(), 2);
        assert_eq!(f.get("n").await.unwrap().map(|v| count_of(&v)), Some(2));
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn redis_round_trip_and_outage_is_a_miss() {
        let prefix = format!("gridwork-test:{}:", uuid::Uuid::new_v4());
        // The machine's Redis (127.0.0.1:6379), as on CI, or the throwaway
        // one scripts/test.sh started.
        let url = std::env::var("GW_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let c = connect(&url, &prefix).unwrap();
        c.set("k", b"v", Duration::from_secs(30)).await.unwrap();
        assert_eq!(c.get("k").await.unwrap(), Some(b"v".to_vec()));
        c.del("k").await.unwrap();
        assert_eq!(c.get("k").await.unwrap(), None);
        assert!(c.set_nx("lease", b"a", Duration::from_secs(30)).await.unwrap());
        assert!(!c.set_nx("lease", b"b", Duration::from_secs(30)).await.unwrap());
        assert_eq!(c.get("lease").await.unwrap(), Some(b"a".to_vec()));
        c.del("lease").await.unwrap();
        assert_eq!(c.incr("n", Duration::from_secs(30)).await.unwrap(), 1);
        assert_eq!(c.incr("n", Duration::from_secs(30)).await.unwrap(), 2);
        c.del("n").await.unwrap();
        // Nothing listens on port 1: every call fails fast, none panics or hangs.
        let down = connect("redis://127.0.0.1:1", &prefix).unwrap();
        let start = std::time::Instant::now();
        assert!(down.get("k").await.is_err());
        assert!(down.set("k", b"v", Duration::from_secs(1)).await.is_err());
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
