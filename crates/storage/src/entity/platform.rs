//! Tables the platform owns: revoked tokens (sign-out of any service's tokens).
//! Which other services may read them: ADR 0002.

pub mod revoked_token {
    //! Tokens revoked before their expiry (the truth behind the cache's fast path).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: DateTimeUtc,
        pub revoked_at: DateTimeUtc,
        pub revoked_by: String,
    }
    no_relations!();
}
