//! Free text from phones and case workers, and the error a broken rule
//! gives: shared by reports, case actions and tasks (`docs/errors.md`).

/// A rule a report (or a case action) broke, with the field at fault and a
/// message in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {en}")]
pub struct ValidationError {
    pub field: String,
    pub code: &'static str,
    pub en: String,
    pub zh: String,
}

impl ValidationError {
    pub fn new(field: &str, code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        ValidationError { field: field.to_owned(), code, en: en.into(), zh: zh.into() }
    }
}

/// The longest note: a resolution's, an on-spot resolution's.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Free text from a phone: at most `max` characters, and no control
/// characters other than tab and line breaks (a NUL byte, for one, cannot be
/// stored in PostgreSQL text and means the client sent garbage).
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if let Some(c) = value.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(ValidationError::new(
            field,
            "invalid_characters",
            format!("{field} contains the control character U+{:04X}", c as u32),
            format!("{field} 含有控制字符 U+{:04X}", c as u32),
        ));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} is longer than {max} characters"),
            format!("{field} 超过 {max} 个字符"),
        ));
    }
    Ok(())
}
