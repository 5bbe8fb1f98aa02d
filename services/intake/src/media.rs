//! Photos and short videos from the field: `POST /v1/media` streams the
//! body to object storage (object_store: a local directory in the embedded
//! default, S3-compatible in production) while hashing it, refuses unknown
//! types (by their bytes, not the declared type) and oversized bodies
//! (413, as soon as the limit is passed), and stores each content once: its
//! SHA-256 is its id. Reports name media by id, uploaded before or after
//! them.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures::StreamExt;
use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{case, case_report, media, media_upload, report, report_media, task, task_media};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use crate::error::IntakeError;
use crate::State;

/// Where media go, and how large they may be.
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    pub max_image_bytes: u64,
    pub max_video_bytes: u64,
}

impl MediaStore {
    /// From `intake.media_url`: `file://DIR`, `memory://` or `s3://…`.
    pub fn open(url: &str, max_image_bytes: u64, max_video_bytes: u64) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("media directory {dir}: {e}"))?;
            let dir = std::fs::canonicalize(dir)?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
        } else if url.starts_with("memory://") {
            Arc::new(object_store::memory::InMemory::new())
        } else {
            let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("intake.media_url {url}: {e}"))?;
            let (store, _) = object_store::parse_url(&parsed).map_err(|e| {
                anyhow::anyhow!(
                    "intake.media_url {url}: {e} (S3-compatible storage needs gridwork built with `--features s3`)"
                )
            })?;
            Arc::from(store)
        };
        Ok(MediaStore { store, max_image_bytes, max_video_bytes })
    }
}

/// What the first bytes say the file is (never the client's word).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let ftyp = |brands: &[&[u8]]| head.len() >= 12 && &head[4..8] == b"ftyp" && brands.contains(&&head[8..12]);
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if ftyp(&[b"heic", b"heix", b"mif1", b"msf1", b"heif"]) {
        Some("image/heic")
    } else if ftyp(&[b"qt  "]) {
        Some("video/quicktime")
    } else if ftyp(&[b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash"]) {
        Some("video/mp4")
    } else {
        None
    }
}

fn too_large(limit: u64) -> IntakeError {
    IntakeError::MediaTooLarge(limit)
}

fn storage(e: impl std::fmt::Display) -> IntakeError {
    IntakeError::Unavailable(format!("media storage: {e}"))
}

/// A media id: a SHA-256 in lower-case hex.
pub use gridwork_domain::report::is_media_id;

/// Where a medium's bytes live: `sha256/<first two hex digits>/<id>`.
fn object_path(id: &str) -> Path {
    Path::from(format!("sha256/{}/{id}", id.get(..2).unwrap_or_default()))
}

/// A file's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(#[allow(dead_code)] Vec<u8>);

/// A stored photo or video.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Medium {
    /// The SHA-256 of the bytes, hex: name it in a report's `media`.
    pub id: String,
    pub content_type: String,
    pub size: i64,
    pub url: String,
}

/// Uploads a photo (JPEG, PNG, HEIC, WebP) or short video (MP4); the type
/// comes from the bytes. The same bytes again are stored once; the answer is
/// 201 either way, so it never tells whether someone else uploaded them.
#[utoipa::path(post, path = "/v1/media", tag = "media",
    request_body(content = FileBytes, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored (or already stored: the same answer either way)", body = Medium),
        (status = 400, description = "Empty or unreadable body", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 413, description = "Larger than the limit for its type", body = ApiError),
        (status = 415, description = "Not a supported photo or video", body = ApiError),
        Unavailable,
    ))]
pub async fn upload(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    mut body: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let actor = caller.0;
    if !matches!(actor.role, Role::GridWorker | Role::Admin) {
        return Err(IntakeError::Forbidden("only grid workers upload media"));
    }
    let m = &state.media;
    let largest = m.max_image_bytes.max(m.max_video_bytes);
    let declared: Option<u64> = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > largest) {
        return Err(too_large(largest));
    }
    // Enough of the head to know the type.
    let mut head: Vec<u8> = Vec::new();
    let mut rest: Vec<web::Bytes> = Vec::new();
    while head.len() < 16 {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| IntakeError::BadBody(e.to_string()))?;
                head.extend_from_slice(&chunk);
                rest.push(chunk);
            }
            None => break,
        }
    }
    if head.is_empty() {
        return Err(IntakeError::EmptyBody);
    }
    let content_type = sniff(&head).ok_or(IntakeError::UnsupportedMediaType)?;
    let limit = if content_type.starts_with("video/") { m.max_video_bytes } else { m.max_image_bytes };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }

    // Streamed to a temporary object while hashing; named by its hash after.
    let tmp = Path::from(format!("tmp/{}", uuid::Uuid::new_v4()));
    let upload = m.store.put_multipart(&tmp).await.map_err(storage)?;
    let mut writer = WriteMultipart::new(upload);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut pending = rest.into_iter();
    loop {
        let chunk = match pending.next() {
            Some(c) => c,
            None => match body.next().await {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    let _ = writer.abort().await;
                    return Err(IntakeError::BadBody(e.to_string()));
                }
                None => break,
            },
        };
        size += chunk.len() as u64;
        if size > limit {
            let _ = writer.abort().await;
            return Err(too_large(limit));
        }
        hasher.update(&chunk);
        writer.wait_for_capacity(4).await.map_err(storage)?;
        writer.put(chunk);
    }
    if size == 0 {
        let _ = writer.abort().await;
        return Err(IntakeError::EmptyBody);
    }
    writer.finish().await.map_err(storage)?;
    let id = hex::encode(hasher.finalize());
    let path = object_path(&id);
    let existed = match m.store.head(&path).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => return Err(storage(e)),
    };
    if existed {
        m.store.delete(&tmp).await.map_err(storage)?;
    } else {
        m.store.rename(&tmp, &path).await.map_err(storage)?;
    }
    let now = Utc::now();
    let known = media::Entity::find_by_id(id.clone()).one(&state.db).await?;
    if known.is_none() {
        let row = media::Model {
            id: id.clone(),
            content_type: content_type.to_owned(),
            size: size as i64,
            uploaded_by: actor.id.clone(),
            uploaded_at: now,
        };
        // Two uploads of the same file at once: the second insert fails on
        // the key, and the file is the same either way.
        if let Err(e) = row.into_active_model().reset_all().insert(&state.db).await {
            if media::Entity::find_by_id(id.clone()).one(&state.db).await?.is_none() {
                return Err(e.into());
            }
        }
    }
    // Every uploader of these bytes may see them, whoever was first.
    media_upload::Entity::insert(media_upload::ActiveModel {
        media_id: Set(id.clone()),
        user_id: Set(actor.id.clone()),
        uploaded_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([media_upload::Column::MediaId, media_upload::Column::UserId]).do_nothing().to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    tracing::info!(media = %id, content_type, size, deduplicated = known.is_some(), "media stored");
    let body = Medium { url: format!("/v1/media/{id}"), id, content_type: content_type.to_owned(), size: size as i64 };
    // 201 whether or not someone stored these bytes before: the answer must
    // not tell a caller what others uploaded (ADR 0024).
    Ok(HttpResponse::Created().json(body))
}

/// Whether `actor` may see medium `id`: they uploaded its bytes, reported
/// a report that names it, or may see a case that names it — the case of a
/// report naming it (first or linked) or of a task whose result names it —
/// by the domain's one rule for cases (ADR 0024). Admins see what any report
/// names, as they see every report.
pub async fn may_see(db: &DatabaseConnection, actor: &Actor, id: &str) -> Result<bool, DbErr> {
    let uploaded = media_upload::Entity::find_by_id((id.to_owned(), actor.id.clone())).one(db).await?.is_some();
    if uploaded {
        return Ok(true);
    }
    let report_ids: Vec<String> = report_media::Entity::find()
        .filter(report_media::Column::MediaId.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.report_id)
        .collect();
    if !report_ids.is_empty() {
        if actor.role == Role::Admin {
            return Ok(true);
        }
        let reporter = report::Entity::find()
            .filter(report::Column::Id.is_in(report_ids.clone()))
            .filter(report::Column::Reporter.eq(actor.id.as_str()))
            .one(db)
            .await?;
        if reporter.is_some() {
            return Ok(true);
        }
    }
    if !actor.works_queues() {
        return Ok(false);
    }
    // The cases that name it: of its reports (the first report of a case,
    // or one linked to it) and of the tasks whose results show it.
    let mut case_ids: Vec<String> = Vec::new();
    if !report_ids.is_empty() {
        case_ids.extend(
            case_report::Entity::find()
                .filter(case_report::Column::ReportId.is_in(report_ids.clone()))
                .all(db)
                .await?
                .into_iter()
                .map(|l| l.case_id),
        );
    }
    let task_ids: Vec<String> = task_media::Entity::find()
        .filter(task_media::Column::MediaId.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    if !task_ids.is_empty() {
        case_ids.extend(
            task::Entity::find().filter(task::Column::Id.is_in(task_ids)).all(db).await?.into_iter().map(|t| t.case_id),
        );
    }
    if report_ids.is_empty() && case_ids.is_empty() {
        return Ok(false);
    }
    let mut cond = Condition::any();
    if !report_ids.is_empty() {
        cond = cond.add(case::Column::ReportId.is_in(report_ids));
    }
    if !case_ids.is_empty() {
        cond = cond.add(case::Column::Id.is_in(case_ids));
    }
    let cases = case::Entity::find().filter(cond).all(db).await?;
    Ok(cases.iter().any(|c| actor.may_see_case(&c.centre, c.channels())))
}

/// `GET /v1/media/{id}`: the file, to those who may see it ([`may_see`]);
/// 404 to everyone else, as for an id never uploaded.
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media",
    params(("id" = String, Path, description = "The medium's SHA-256, hex")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file", content(
            (FileBytes = "image/jpeg"), (FileBytes = "image/png"), (FileBytes = "image/heic"),
            (FileBytes = "image/webp"), (FileBytes = "video/mp4"), (FileBytes = "video/quicktime"))),
        Unauthorized,
        (status = 404, description = "No such medium visible to the caller", body = ApiError),
        Unavailable,
    ))]
pub async fn download(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, IntakeError> {
    let id = path.into_inner();
    let actor = caller.0;
    if !is_media_id(&id) {
        return Err(IntakeError::NotFound("media"));
    }
    let row = media::Entity::find_by_id(id.clone()).one(&state.db).await?.ok_or(IntakeError::NotFound("media"))?;
    if !may_see(&state.db, &actor, &id).await? {
        // 404, not 403: do not reveal that the medium exists.
        return Err(IntakeError::NotFound("media"));
    }
    let got = state.media.store.get(&object_path(&id)).await.map_err(storage)?;
    let stream = got.into_stream().map(|r| r.map_err(|e| actix_web::error::ErrorServiceUnavailable(e.to_string())));
    Ok(HttpResponse::Ok()
        .content_type(row.content_type)
        .insert_header(("Cache-Control", "private, max-age=86400, immutable"))
        .streaming(stream))
}
