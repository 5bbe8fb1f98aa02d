//! Integrations' API keys (ADR 0020): issued by `gridwork apikey issue`
//! ([`issue_key`]), stored as SHA-256 only, revocable, each mapping to a
//! reporting identity and a scope (an area and a set of categories); and
//! the check of the key a request presents.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use gridwork_domain::auth::Role;
use gridwork_domain::codes::{self, Level};
use gridwork_storage::entity::{api_key, category, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};

use crate::error::Open311Error;
use crate::State;

/// Every key starts with this, so a leaked one is easy to recognise.
pub const KEY_PREFIX: &str = "gw311_";

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a key's category list allows `code` ("" allows every category
/// Open311 offers; `a.` allows every code under `a.`).
pub fn allows_category(categories: &str, code: &str) -> bool {
    let mut list = categories.split(',').map(str::trim).filter(|c| !c.is_empty()).peekable();
    list.peek().is_none() || list.any(|c| c == code || (c.ends_with('.') && code.starts_with(c)))
}

pub(super) async fn authenticate(state: &State, key: Option<&str>) -> Result<api_key::Model, Open311Error> {
    let Some(key) = key else {
        return Err(Open311Error::bad_request("api_key is required"));
    };
    match api_key::Entity::find().filter(api_key::Column::KeyHash.eq(hash_key(key))).one(&state.db).await? {
        None => Err(Open311Error::forbidden("invalid api_key")),
        Some(k) if k.revoked_at.is_some() => {
            Err(Open311Error::forbidden(format!("api_key {} was revoked; ask the operator for a new one", k.id)))
        }
        Some(k) => Ok(k),
    }
}

/// intake's per-token limit (`intake.rate_limit_per_minute`), per key.
pub(super) async fn rate_limit(state: &State, key: &api_key::Model) -> Result<(), Open311Error> {
    Ok(crate::limits::rate_limit_subject(state, &format!("apikey:{}", key.id)).await?)
}

/// What `gridwork apikey issue` asks for.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The integration.
    pub name: String,
    /// Username (or, if no such user, the identity) reports are recorded as
    /// reported by.
    pub user: String,
    /// Province, city or county code the key may report into ("" = anywhere served).
    pub area: String,
    /// Category codes or dotted prefixes (`environment.`); empty = all Open311 offers.
    pub categories: Vec<String>,
    pub created_by: String,
}

/// Issues a key: the stored row and the key itself, which is shown only now.
pub async fn issue_key(db: &DatabaseConnection, new: NewKey) -> anyhow::Result<(api_key::Model, String)> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        anyhow::bail!("--name must be 1 to 100 characters");
    }
    let reporter = match user::Entity::find().filter(user::Column::Username.eq(new.user.as_str())).one(db).await? {
        Some(u) if u.role == Role::GridWorker.as_str() => u.id,
        Some(u) => anyhow::bail!(
            "user {} is a {}: an API key reports as a grid worker, or as an integration identity that is no user",
            u.username,
            u.role
        ),
        None if !new.user.is_empty() && new.user.len() <= 100 && !new.user.chars().any(char::is_whitespace) => {
            new.user.clone()
        }
        None => anyhow::bail!("--user must be a username or an identity without spaces (at most 100 characters)"),
    };
    if !new.area.is_empty() && !matches!(codes::level_of(&new.area), Ok(Level::Province | Level::City | Level::County))
    {
        anyhow::bail!("--scope must be a province, city or county code (6 digits), got {:?}", new.area);
    }
    let offered: Vec<String> = category::Entity::find()
        .filter(category::Column::Petition.eq(false))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    for c in &new.categories {
        if c.starts_with("petition.") || c == "petition" {
            anyhow::bail!("{c}: petitions cannot be reported through Open311 (they carry personal data)");
        }
        let matches = offered.iter().any(|o| o == c || (c.ends_with('.') && o.starts_with(c.as_str())));
        if !matches {
            anyhow::bail!("--categories: {c:?} is no category code nor a prefix of one (a prefix ends with '.')");
        }
    }
    let rng = ring::rand::SystemRandom::new();
    let mut secret = [0u8; 32];
    let mut id = [0u8; 6];
    ring::rand::SecureRandom::fill(&rng, &mut secret).map_err(|_| anyhow::anyhow!("no randomness for a key"))?;
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| anyhow::anyhow!("no randomness for a key id"))?;
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let row = api_key::Model {
        id: format!("ak_{}", hex::encode(id)),
        name: name.to_owned(),
        key_hash: hash_key(&key),
        key_prefix: key.chars().take(KEY_PREFIX.len() + 4).collect(),
        reporter,
        area: new.area,
        categories: new.categories.join(","),
        created_at: Utc::now(),
        created_by: new.created_by,
        revoked_at: None,
    };
    let stored = row.into_active_model().reset_all().insert(db).await?;
    Ok((stored, key))
}

pub async fn list_keys(db: &DatabaseConnection) -> anyhow::Result<Vec<api_key::Model>> {
    Ok(api_key::Entity::find().order_by_asc(api_key::Column::CreatedAt).all(db).await?)
}

/// Revokes a key at once (every request looks the key up). `Ok(false)`:
/// it was revoked already.
pub async fn revoke_key(db: &DatabaseConnection, id: &str) -> anyhow::Result<(bool, api_key::Model)> {
    let Some(k) = api_key::Entity::find_by_id(id.to_owned()).one(db).await? else {
        anyhow::bail!("no API key {id:?} (see `gridwork apikey list`)");
    };
    if k.revoked_at.is_some() {
        return Ok((false, k));
    }
    let mut m = k.into_active_model();
    m.revoked_at = Set(Some(Utc::now()));
    Ok((true, m.update(db).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_of_a_key() {
        assert!(allows_category("", "dispute.neighbourhood"));
        assert!(allows_category("environment.,hazard.fire", "environment.pollution"));
        assert!(allows_category("environment.,hazard.fire", "hazard.fire"));
        assert!(!allows_category("environment.,hazard.fire", "hazard.gas"));
        assert!(!allows_category("environment", "environment.pollution"));
    }
}
