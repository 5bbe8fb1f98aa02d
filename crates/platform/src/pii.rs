//! Personal information at rest: envelope encryption (PIPL).
//!
//! Each value is encrypted (AES-256-GCM) under a fresh data key; the data
//! key is wrapped (AES-256-GCM) by a key-encryption key of the keyring,
//! named by its id. Rotating adds a new key as current: new values use it,
//! old values still open with the key they name, and `rewrap` moves a
//! value's data key to the current key without touching the ciphertext.
//!
//! Sealed form: `gwpii1:<kid>:<base64 wrap-nonce‖wrapped key>:<base64 nonce‖ciphertext>`.
//! The record's own id is bound in as associated data, so a sealed value
//! copied onto another record does not open.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "gwpii1";

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("keyring file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the value is sealed with key {0:?}, which the keyring does not hold")]
    UnknownKey(String),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open (wrong key, wrong record, or tampered)")]
    Tampered,
    #[error("random number generator failed")]
    Random,
}

#[derive(Clone, Serialize, Deserialize)]
struct KeyringFile {
    current: String,
    /// Key id → base64 of 32 bytes.
    keys: BTreeMap<String, String>,
}

/// The key-encryption keys.
#[derive(Clone)]
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current).field("keys", &self.keys.len()).finish()
    }
}

fn random<const N: usize>() -> Result<[u8; N], PiiError> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| PiiError::Random)?;
    Ok(b)
}

fn key(bytes: &[u8; 32]) -> Result<LessSafeKey, PiiError> {
    UnboundKey::new(&AES_256_GCM, bytes).map(LessSafeKey::new).map_err(|_| PiiError::Malformed)
}

fn seal_with(k: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, PiiError> {
    let nonce = random::<NONCE_LEN>()?;
    let mut buf = plain.to_vec();
    key(k)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
        .map_err(|_| PiiError::Tampered)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

fn open_with(k: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
    if sealed.len() < NONCE_LEN {
        return Err(PiiError::Malformed);
    }
    let (n, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| PiiError::Malformed)?;
    let mut buf = rest.to_vec();
    let plain = key(k)?.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| PiiError::Tampered)?;
    Ok(plain.to_vec())
}

impl Keyring {
    /// A keyring of one fresh key (tests, first start).
    pub fn generate(kid: &str) -> Result<Self, PiiError> {
        Ok(Keyring { current: kid.to_owned(), keys: BTreeMap::from([(kid.to_owned(), random::<32>()?)]) })
    }

    /// Loads the keyring at `path`, creating it (mode 0600, one key) if missing.
    pub fn load_or_create(path: &Path) -> Result<Self, PiiError> {
        let ferr = |reason: String| PiiError::File { path: path.display().to_string(), reason };
        if !path.exists() {
            // If another process created the keyring meanwhile, its keys
            // are the ones to use: read below.
            Keyring::generate("k1")?.write(path, crate::keyfile::create)?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| ferr(e.to_string()))?;
        let file: KeyringFile = serde_json::from_str(&text).map_err(|e| ferr(format!("not a keyring: {e}")))?;
        let mut keys = BTreeMap::new();
        for (kid, b64) in file.keys {
            let raw = STANDARD.decode(b64.trim()).map_err(|e| ferr(format!("key {kid}: not base64: {e}")))?;
            let k: [u8; 32] = raw.try_into().map_err(|_| ferr(format!("key {kid}: must be 32 bytes")))?;
            keys.insert(kid, k);
        }
        if !keys.contains_key(&file.current) {
            return Err(ferr(format!("current key {:?} is not in the file", file.current)));
        }
        Ok(Keyring { current: file.current, keys })
    }

    /// Writes the keyring to `path`, replacing it atomically (mode 0600
    /// from the first byte; a crash leaves the old keyring or the new one,
    /// whole: [`crate::keyfile`]).
    pub fn save(&self, path: &Path) -> Result<(), PiiError> {
        self.write(path, |p, b| crate::keyfile::replace(p, b).map(|()| true)).map(|_| ())
    }

    fn write(&self, path: &Path, put: impl FnOnce(&Path, &[u8]) -> std::io::Result<bool>) -> Result<bool, PiiError> {
        let ferr = |reason: String| PiiError::File { path: path.display().to_string(), reason };
        let file = KeyringFile {
            current: self.current.clone(),
            keys: self.keys.iter().map(|(k, v)| (k.clone(), STANDARD.encode(v))).collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| ferr(e.to_string()))?;
        put(path, text.as_bytes()).map_err(|e| ferr(e.to_string()))
    }

    /// Adds a fresh key and makes it current; returns its id.
    pub fn rotate(&mut self) -> Result<String, PiiError> {
        let next = (1..).map(|i| format!("k{i}")).find(|k| !self.keys.contains_key(k)).unwrap_or_default();
        self.keys.insert(next.clone(), random::<32>()?);
        self.current = next.clone();
        Ok(next)
    }

    pub fn current(&self) -> &str {
        &self.current
    }

    /// Seals `plain` for the record `record` under the current key.
    pub fn seal(&self, record: &str, plain: &[u8]) -> Result<String, PiiError> {
        let kek = self.keys.get(&self.current).ok_or_else(|| PiiError::UnknownKey(self.current.clone()))?;
        let dek = random::<32>()?;
        let wrapped = seal_with(kek, self.current.as_bytes(), &dek)?;
        let body = seal_with(&dek, record.as_bytes(), plain)?;
        Ok(format!("{PREFIX}:{}:{}:{}", self.current, STANDARD.encode(wrapped), STANDARD.encode(body)))
    }

    fn parts<'a>(&self, sealed: &'a str) -> Result<(&'a str, Vec<u8>, &'a str), PiiError> {
        let mut it = sealed.splitn(4, ':');
        let (Some(PREFIX), Some(kid), Some(wrapped), Some(body)) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(PiiError::Malformed);
        };
        Ok((kid, STANDARD.decode(wrapped).map_err(|_| PiiError::Malformed)?, body))
    }

    fn unwrap_dek(&self, kid: &str, wrapped: &[u8]) -> Result<[u8; 32], PiiError> {
        let kek = self.keys.get(kid).ok_or_else(|| PiiError::UnknownKey(kid.to_owned()))?;
        open_with(kek, kid.as_bytes(), wrapped)?.try_into().map_err(|_| PiiError::Malformed)
    }

    /// Opens a value sealed for `record`.
    pub fn open(&self, record: &str, sealed: &str) -> Result<Vec<u8>, PiiError> {
        let (kid, wrapped, body) = self.parts(sealed)?;
        let dek = self.unwrap_dek(kid, &wrapped)?;
        open_with(&dek, record.as_bytes(), &STANDARD.decode(body).map_err(|_| PiiError::Malformed)?)
    }

    /// The same value with its data key wrapped by the current key; the
    /// ciphertext is unchanged.
    pub fn rewrap(&self, sealed: &str) -> Result<String, PiiError> {
        let (kid, wrapped, body) = self.parts(sealed)?;
        if kid == self.current {
            return Ok(sealed.to_owned());
        }
        let dek = self.unwrap_dek(kid, &wrapped)?;
        let kek = self.keys.get(&self.current).ok_or_else(|| PiiError::UnknownKey(self.current.clone()))?;
        let rewrapped = seal_with(kek, self.current.as_bytes(), &dek)?;
        Ok(format!("{PREFIX}:{}:{}:{body}", self.current, STANDARD.encode(rewrapped)))
    }

    /// Whether `s` is a sealed value (rather than legacy plaintext).
    pub fn is_sealed(s: &str) -> bool {
        s.starts_with("gwpii1:")
    }
}

/// `张三` → `张*`, `欧阳娜娜` → `欧***`; `13800001234` → `138****1234`;
/// an ID number keeps its first 6 and last 4 characters.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.trim().chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

pub fn mask_digits(s: &str, keep_head: usize, keep_tail: usize) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.len() <= keep_head + keep_tail {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep_head || i >= chars.len() - keep_tail { *c } else { '*' })
        .collect()
}

/// Encrypts the parties of reports stored before encryption at rest (plain
/// JSON), and fills in their party counts. Returns how many it sealed.
pub async fn seal_legacy_parties(db: &sea_orm::DatabaseConnection, ring: &Keyring) -> anyhow::Result<usize> {
    use gridwork_storage::entity::report;
    seal_legacy(db, ring, report::Column::Parties, |parties| {
        let count = serde_json::from_str::<Vec<serde_json::Value>>(parties).map(|p| p.len()).unwrap_or(0);
        Some((report::Column::PartyCount, count as i32))
    })
    .await
}

/// Seals petitions' matter texts stored in plaintext before they were
/// sealed at intake (the matter can name people). Returns how many.
pub async fn seal_legacy_matters(db: &sea_orm::DatabaseConnection, ring: &Keyring) -> anyhow::Result<usize> {
    use gridwork_storage::entity::report;
    seal_legacy(db, ring, report::Column::Matter, |_| None).await
}

/// Re-wraps the data key of every sealed value (reports' parties, matter
/// and on-the-spot note; case events' statements) that is not under the
/// keyring's current key; the ciphertext is
/// untouched. Calls `progress` with the count so far after each page.
pub async fn rewrap_all(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
    progress: impl Fn(usize),
) -> anyhow::Result<usize> {
    use gridwork_storage::entity::report;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let current = format!("{PREFIX}:{}:%", ring.current());
    let mut moved = 0usize;
    for column in [report::Column::Parties, report::Column::Matter, report::Column::OnSpotNote] {
        let mut after = String::new();
        loop {
            let rows: Vec<(String, Option<String>)> = report::Entity::find()
                .select_only()
                .column(report::Column::Id)
                .column(column)
                .filter(report::Column::Id.gt(after.as_str()))
                .filter(column.like(format!("{PREFIX}:%")))
                .filter(column.not_like(current.as_str()))
                .order_by_asc(report::Column::Id)
                .limit(1000)
                .into_tuple()
                .all(db)
                .await?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            for (id, sealed) in rows {
                report::Entity::update_many()
                    .col_expr(column, Expr::value(ring.rewrap(&sealed.unwrap_or_default())?))
                    .filter(report::Column::Id.eq(id.as_str()))
                    .exec(db)
                    .await?;
                moved += 1;
            }
            progress(moved);
        }
    }
    // The words given with case actions, sealed per event.
    use gridwork_storage::entity::case_event;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, Option<String>)> = case_event::Entity::find()
            .select_only()
            .column(case_event::Column::Id)
            .column(case_event::Column::Statement)
            .filter(case_event::Column::Id.gt(after))
            .filter(case_event::Column::Statement.like(format!("{PREFIX}:%")))
            .filter(case_event::Column::Statement.not_like(current.as_str()))
            .order_by_asc(case_event::Column::Id)
            .limit(1000)
            .into_tuple()
            .all(db)
            .await?;
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        for (id, sealed) in rows {
            case_event::Entity::update_many()
                .col_expr(case_event::Column::Statement, Expr::value(ring.rewrap(&sealed.unwrap_or_default())?))
                .filter(case_event::Column::Id.eq(id))
                .exec(db)
                .await?;
            moved += 1;
        }
        progress(moved);
    }
    Ok(moved)
}

/// Seals the words people gave with case actions stored in plaintext in
/// `case_events.reason` before they were sealed (ADR 0028): every reason
/// of an event a person caused moves, sealed, to `statement`. Returns how
/// many.
pub async fn seal_legacy_statements(db: &sea_orm::DatabaseConnection, ring: &Keyring) -> anyhow::Result<usize> {
    use gridwork_storage::entity::case_event;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let mut sealed = 0;
    loop {
        let rows: Vec<(i64, String, String)> = case_event::Entity::find()
            .select_only()
            .column(case_event::Column::Id)
            .column(case_event::Column::EventId)
            .column(case_event::Column::Reason)
            .filter(case_event::Column::ActorRole.ne("system"))
            .filter(case_event::Column::Statement.is_null())
            .filter(case_event::Column::Reason.ne(""))
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for (id, event_id, words) in rows {
            case_event::Entity::update_many()
                .col_expr(case_event::Column::Statement, Expr::value(ring.seal(&event_id, words.as_bytes())?))
                .col_expr(case_event::Column::Reason, Expr::value(""))
                .filter(case_event::Column::Id.eq(id))
                .exec(db)
                .await?;
            sealed += 1;
        }
    }
}

/// Seals every plaintext value of a `reports` column, bound to its report,
/// also setting the integer column `also` returns for the plaintext.
async fn seal_legacy(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
    column: gridwork_storage::entity::report::Column,
    also: impl Fn(&str) -> Option<(gridwork_storage::entity::report::Column, i32)>,
) -> anyhow::Result<usize> {
    use gridwork_storage::entity::report;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let mut sealed = 0;
    loop {
        let rows: Vec<(String, Option<String>)> = report::Entity::find()
            .select_only()
            .column(report::Column::Id)
            .column(column)
            .filter(column.is_not_null())
            .filter(column.not_like("gwpii1:%"))
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for (id, plain) in rows {
            let plain = plain.unwrap_or_default();
            let mut update = report::Entity::update_many()
                .col_expr(column, Expr::value(ring.seal(&id, plain.as_bytes())?))
                .filter(report::Column::Id.eq(id.as_str()));
            if let Some((col, n)) = also(&plain) {
                update = update.col_expr(col, Expr::value(n));
            }
            update.exec(db).await?;
            sealed += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_rewrap() {
        let mut ring = Keyring::generate("k1").unwrap();
        let sealed = ring.seal("report-1", "张三 13800001234".as_bytes()).unwrap();
        assert!(Keyring::is_sealed(&sealed) && !sealed.contains("13800001234"));
        assert_eq!(ring.open("report-1", &sealed).unwrap(), "张三 13800001234".as_bytes());
        // Bound to its record.
        assert!(matches!(ring.open("report-2", &sealed), Err(PiiError::Tampered)));
        // Two seals of one value differ.
        assert_ne!(sealed, ring.seal("report-1", "张三 13800001234".as_bytes()).unwrap());
        // Tampering is caught.
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.open("report-1", &bad).is_err());
        // Rotation: old values still open; rewrap moves them to the new key.
        assert_eq!(ring.rotate().unwrap(), "k2");
        assert_eq!(ring.open("report-1", &sealed).unwrap(), "张三 13800001234".as_bytes());
        let moved = ring.rewrap(&sealed).unwrap();
        assert!(moved.starts_with("gwpii1:k2:"));
        assert_eq!(moved.rsplit(':').next(), sealed.rsplit(':').next(), "ciphertext unchanged");
        assert_eq!(ring.open("report-1", &moved).unwrap(), "张三 13800001234".as_bytes());
        // A keyring without the old key cannot open old values.
        let other = Keyring::generate("k1").unwrap();
        assert!(matches!(other.open("report-1", &sealed), Err(PiiError::Tampered)));
        assert!(matches!(other.open("report-1", &moved), Err(PiiError::UnknownKey(k)) if k == "k2"));
    }

    #[test]
    fn keyring_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pii-keyring.json");
        let mut ring = Keyring::load_or_create(&path).unwrap();
        let sealed = ring.seal("r", b"x").unwrap();
        ring.rotate().unwrap();
        ring.save(&path).unwrap();
        let again = Keyring::load_or_create(&path).unwrap();
        assert_eq!(again.current(), "k2");
        assert_eq!(again.open("r", &sealed).unwrap(), b"x");
        std::fs::write(&path, r#"{"current": "k9", "keys": {}}"#).unwrap();
        assert!(Keyring::load_or_create(&path).unwrap_err().to_string().contains("current key \"k9\""));
    }

    #[test]
    fn masks() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_digits("13800001234", 3, 4), "138****1234");
        assert_eq!(mask_digits("371002198001011234", 6, 4), "371002********1234");
        assert_eq!(mask_digits("123", 3, 4), "***");
    }
}
