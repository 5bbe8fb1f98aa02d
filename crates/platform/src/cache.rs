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
    FeatureNotEnabled {
        backend: &'static str,
        hint: &'static str,
    },
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
        MemoryCache {
            prefix: prefix.to_owned(),
            max_entries,
            map: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let k = format!("{}{key}", self.prefix);
        let mut map = self
            .map
            .lock()
            .map_err(|_| CacheError::Backend("poisoned".into()))?;
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
        let mut map = self
            .map
            .lock()
            .map_err(|_| CacheError::Backend("poisoned".into()))?;
        if map.len() >= self.max_entries {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(
            format!("{}{key}", self.prefix),
            (value.to_vec(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn del(&self, key: &str) -> Result<(), CacheError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| CacheError::Backend("poisoned".into()))?;
        map.remove(&format!("{}{key}", self.prefix));
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process cache (memory://)".into()
    }
}

pub fn connect(url: &str, prefix: &str) -> Result<Arc<dyn Cache>, CacheError> {
    match url.split("://").next().unwrap_or_default() {
        "memory" => Ok(Arc::new(MemoryCache::new(prefix, 100_000))),
        "redis" => Err(CacheError::FeatureNotEnabled {
            backend: "redis",
            hint: "this build runs the in-process cache only (memory://); the Redis backend is tracked in issue 3",
        }),
        _ => Err(CacheError::UnsupportedUrl(url.to_owned())),
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
        assert!(connect("redis://127.0.0.1", "x").is_err());
    }
}
