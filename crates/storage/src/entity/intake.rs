//! Tables intake owns: users, reports and their events, media, refresh tokens, Open311 API keys.
//! Which other services may read them: ADR 0002.

pub mod user {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub username: String,
        pub password_hash: String,
        pub role: String,
        pub scope: String,
        pub display_name: String,
        /// A mediator's channel.
        pub channel: Option<String>,
        /// Set when an admin deactivated the account: it cannot sign in or
        /// refresh, and its tokens were revoked then.
        pub deactivated_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub reporter: String,
        pub occurred_at: DateTimeUtc,
        pub received_at: DateTimeUtc,
        pub lat: f64,
        pub lon: f64,
        pub accuracy_m: Option<f64>,
        pub crs: String,
        pub address: Option<String>,
        pub category: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        pub urgency: String,
        /// Parties as JSON, sealed (envelope encryption, `gwpii1:…`, bound to
        /// the report id). Personal information: never logged, never on
        /// topics, read only through an audited path.
        #[sea_orm(column_type = "Text")]
        pub parties: String,
        pub matter: Option<String>,
        /// SHA-256 of the request body, to tell a replay from a conflicting reuse of the id.
        pub body_hash: String,
        pub status: String,
        pub grid: Option<String>,
        pub centre: Option<String>,
        pub case_id: Option<String>,
        /// The last case version reflected in `status`.
        pub case_version: i64,
        pub updated_at: DateTimeUtc,
        /// How many parties the report names.
        pub party_count: i32,
        /// When the phone queued the report, by the phone's clock (offline
        /// phones send later; `received_at` is the server's time).
        pub device_time: Option<DateTimeUtc>,
        /// The media the report shows: a JSON array of content hashes
        /// (uploaded before or after the report).
        #[sea_orm(column_type = "Text", nullable)]
        pub media: Option<String>,
        /// The grid worker's on-the-spot note (就地化解), sealed like the
        /// matter (it can name people); never on topics.
        #[sea_orm(column_type = "Text", nullable)]
        pub on_spot_note: Option<String>,
    }
    no_relations!();

    impl Model {
        /// How many parties the report names (without exposing them).
        pub fn party_count(&self) -> usize {
            usize::try_from(self.party_count).unwrap_or(0)
        }
    }
}

pub mod report_event {
    //! The timeline a grid worker sees for a report.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub report_id: String,
        pub at: DateTimeUtc,
        pub status: String,
        pub note: String,
    }
    no_relations!();
}

pub mod media {
    //! A photo or video, stored once per content (its SHA-256 is its id).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub content_type: String,
        pub size: i64,
        pub uploaded_by: String,
        pub uploaded_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod media_upload {
    //! Everyone who uploaded a medium's bytes (the first is also
    //! `media.uploaded_by`): each may see it (ADR 0024).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "media_uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub uploaded_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod report_media {
    //! Which reports name which media (intake writes it with the report).
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "report_media")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub media_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
    }
    no_relations!();
}

pub mod refresh_token {
    //! Refresh tokens (hashed), each spent on use, grouped in families.
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        /// SHA-256 (hex) of the token; the token itself is never stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        /// Every token descended from one sign-in.
        pub family: String,
        pub user_id: String,
        pub issued_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        /// Spent: exchanged for a new pair.
        pub used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        /// The access token issued with it (revoked with the family).
        pub access_jti: String,
        pub access_expires_at: DateTimeUtc,
    }
    no_relations!();
}

/// An Open311 integration's API key (ADR 0020): only its SHA-256 is kept.
pub mod api_key {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        /// Public id (`ak_…`), what `gridwork apikey revoke` takes.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The integration it was issued to.
        pub name: String,
        /// SHA-256 (hex) of the key; the key itself is shown once, at issue.
        #[sea_orm(unique)]
        pub key_hash: String,
        /// The key's first characters, to tell keys apart in listings.
        pub key_prefix: String,
        /// The user id reports made with the key are recorded as reported by.
        pub reporter: String,
        /// Administrative code (province, city or county) the key may report
        /// into; "" = anywhere gridwork serves.
        pub area: String,
        /// Category codes or dotted prefixes the key may report,
        /// comma-separated; "" = every category Open311 offers.
        #[sea_orm(column_type = "Text")]
        pub categories: String,
        pub created_at: DateTimeUtc,
        pub created_by: String,
        pub revoked_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

/// Which API key submitted which report: the reports `/open311/v2/` shows.
pub mod api_key_report {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_key_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub report_id: String,
        pub key_id: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}
