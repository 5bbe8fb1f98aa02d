//! The two formats GeoReport v2 answers in: JSON, and XML written by hand
//! (escaped, with what XML cannot carry replaced), and errors in either.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::error::Open311Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Xml,
}

impl Format {
    pub(super) fn parse(ext: &str) -> Result<Format, Open311Error> {
        match ext {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => Err(Open311Error::not_found(format!("format .{other} is not supported: use .json or .xml"))),
        }
    }

    /// `name.ext` → (`name`, format).
    pub(super) fn split(file: &str) -> Result<(&str, Format), Open311Error> {
        match file.rsplit_once('.') {
            Some((name, ext)) if !name.is_empty() => Ok((name, Format::parse(ext)?)),
            _ => Err(Open311Error::not_found(format!("{file}: name the format, e.g. {file}.json"))),
        }
    }
}

pub(super) const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

pub(super) fn xml_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/xml; charset=utf-8").body(body)
}

/// `<name>value</name>`, escaped; `<name/>` for none.
pub(super) fn el(out: &mut String, name: &str, value: Option<&str>) {
    let Some(value) = value else {
        out.push_str(&format!("<{name}/>"));
        return;
    };
    out.push_str(&format!("<{name}>"));
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // No escape can carry these: replaced, visibly.
            c if !xml_fit(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out.push_str(&format!("</{name}>"));
}

/// Whether an XML 1.0 document can carry `c`: its `Char` production
/// excludes C0 controls other than tab and line breaks, U+FFFE and U+FFFF
/// (not even `&#xFFFF;` may name them), and it tells documents to avoid the
/// other non-characters (U+FDD0–U+FDEF, the last two code points of every
/// plane). Text stored with them (JSON carries them) is shown in XML with
/// U+FFFD in their place.
fn xml_fit(c: char) -> bool {
    let n = c as u32;
    match c {
        '\t' | '\n' | '\r' => true,
        _ if n < 0x20 => false,
        _ if (0xFDD0..=0xFDEF).contains(&n) => false,
        _ => n & 0xFFFE != 0xFFFE,
    }
}

/// `<root><item>…</item>…</root>`.
pub(super) fn xml_list(
    root: &str,
    item: &str,
    rows: impl Iterator<Item = Vec<(&'static str, Option<String>)>>,
) -> String {
    let mut x = String::from(XML_HEAD);
    x.push_str(&format!("<{root}>"));
    for fields in rows {
        x.push_str(&format!("<{item}>"));
        for (name, value) in fields {
            el(&mut x, name, value.as_deref());
        }
        x.push_str(&format!("</{item}>"));
    }
    x.push_str(&format!("</{root}>"));
    x
}

impl Open311Error {
    /// The error as GeoReport shows it, in `format`.
    pub(super) fn render(&self, format: Format) -> HttpResponse {
        let code = self.status.as_u16();
        let mut res = match format {
            Format::Json => HttpResponse::build(self.status)
                .json(serde_json::json!([{"code": code, "description": self.description}])),
            Format::Xml => {
                let mut x = String::from(XML_HEAD);
                x.push_str("<errors><error>");
                el(&mut x, "code", Some(&code.to_string()));
                el(&mut x, "description", Some(&self.description));
                x.push_str("</error></errors>");
                xml_response(self.status, x)
            }
        };
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_text() {
        let mut x = String::new();
        el(&mut x, "d", Some("a<b & \"c\" 'd'\u{1}>"));
        el(&mut x, "n", None);
        assert_eq!(x, "<d>a&lt;b &amp; &quot;c&quot; &apos;d&apos;\u{FFFD}&gt;</d><n/>");
    }

    #[test]
    fn xml_replaces_what_it_cannot_carry() {
        let mut x = String::new();
        el(
            &mut x,
            "d",
            Some("a\u{FFFE}b\u{FFFF}c\u{FDD0}\u{FDEF}\u{1FFFE}\u{10FFFF}\u{0}\t\n\r\u{FDCF}\u{FFFD}\u{10FFFD}"),
        );
        assert_eq!(
            x,
            "<d>a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\t\n\r\u{FDCF}\u{FFFD}\u{10FFFD}</d>"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(Format::split("dispute.neighbourhood.json").unwrap(), ("dispute.neighbourhood", Format::Json));
        assert_eq!(Format::split("abc.xml").unwrap().1, Format::Xml);
        assert_eq!(Format::split("abc.yaml").unwrap_err().status, StatusCode::NOT_FOUND);
        assert!(Format::split("abc").is_err());
    }
}
