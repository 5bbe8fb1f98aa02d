//! Helpers for the services' parts of `/openapi.json`: what the servers
//! enforce on text and page sizes, stated in the schema so that a request
//! the schema allows is accepted and one it excludes is refused (ADR 0022).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A string schema that is one of `values`.
pub fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .build()
}

/// The OpenAPI shape of `gridwork_domain::Hierarchy` (a domain type, which
/// knows nothing of HTTP): a comprehensive grid and every unit above it; a
/// unit below the finest one known is empty (a point or case in no grid
/// belongs to its county). A unit test checks it against what the domain
/// type serialises to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Hierarchy)]
pub struct HierarchySchema {
    /// 15 digits, or empty.
    pub grid: String,
    /// 12 digits, or empty.
    pub community: String,
    /// 9 digits, or empty.
    pub street: String,
    /// 6 digits.
    pub county: String,
    /// 6 digits.
    pub city: String,
    /// 6 digits.
    pub province: String,
}

/// The control characters free text may not hold
/// (`gridwork_domain::text::check_text`: every `char::is_control` but tab,
/// line feed and carriage return).
pub const CONTROL: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// Text without control characters.
pub fn no_control() -> String {
    format!("^[^{CONTROL}]*$")
}

/// Text without control characters and not only white space.
pub fn not_blank() -> String {
    format!("^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$")
}

/// Text without control characters with at least `n` characters once
/// trimmed (`n` ≥ 2). (White space that is also a control character, such
/// as a vertical tab, is refused, not trimmed.)
pub fn at_least_trimmed(n: usize) -> String {
    let inner = n.saturating_sub(2);
    let space = format!("[^\\S{CONTROL}]");
    format!("^{space}*[^\\s{CONTROL}][^{CONTROL}]{{{inner},}}[^\\s{CONTROL}]{space}*$")
}

/// `api` with `constraints` applied: each (schema, property, keywords)
/// sets the keywords on `#/components/schemas/{schema}/properties/{property}`
/// (through the document's JSON form, where a keyword is a key); keywords
/// with `"$replace": true` replace the property's schema instead.
pub fn constrained(
    api: utoipa::openapi::OpenApi,
    constraints: &[(&str, &str, Value)],
    limits: &[&str],
) -> utoipa::openapi::OpenApi {
    let Ok(mut json) = serde_json::to_value(&api) else {
        return api;
    };
    for (schema, property, keywords) in constraints {
        let target = json.pointer_mut(&format!("/components/schemas/{schema}/properties/{property}"));
        if let (Some(target), Some(keywords)) = (target.and_then(|t| t.as_object_mut()), keywords.as_object()) {
            if keywords.get("$replace") == Some(&Value::Bool(true)) {
                target.clear();
            }
            for (k, v) in keywords.iter().filter(|(k, _)| *k != "$replace") {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    for path in limits {
        clamped_limit(&mut json, path);
    }
    serde_json::from_value(json).unwrap_or(api)
}

/// `GET {path}?limit=`: any u64 is accepted and clamped to the page size,
/// so the schema allows every u64 (utoipa's int64 format would make the
/// values above i64::MAX, which the server takes, look invalid).
fn clamped_limit(json: &mut Value, path: &str) {
    let pointer = format!("/paths/{}/get/parameters", path.replace('~', "~0").replace('/', "~1"));
    if let Some(params) = json.pointer_mut(&pointer).and_then(|p| p.as_array_mut()) {
        for p in params.iter_mut().filter(|p| p["name"] == "limit") {
            if let Some(schema) = p.get_mut("schema").and_then(|s| s.as_object_mut()) {
                schema.insert("format".into(), "uint64".into());
                schema.insert("minimum".into(), 0.into());
                schema.insert("maximum".into(), u64::MAX.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` matches the ECMA-262 `pattern` (`regex` reads these
    /// patterns the same way once `\uXXXX` is written `\x{XXXX}`).
    fn matches(pattern: &str, text: &str) -> bool {
        let mut p = String::new();
        let mut rest = pattern;
        while let Some(i) = rest.find("\\u") {
            p.push_str(&rest[..i]);
            p.push_str(&format!("\\x{{{}}}", &rest[i + 2..i + 6]));
            rest = &rest[i + 6..];
        }
        p.push_str(rest);
        regex::Regex::new(&p).unwrap().is_match(text)
    }

    #[test]
    fn the_hierarchy_schema_is_what_the_domain_serialises() {
        let h = serde_json::to_value(gridwork_domain::Hierarchy::from_grid_code("371002001001001").unwrap()).unwrap();
        let doc = serde_json::to_value(HierarchySchema {
            grid: String::new(),
            community: String::new(),
            street: String::new(),
            county: String::new(),
            city: String::new(),
            province: String::new(),
        })
        .unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&doc), keys(&h));
    }

    #[test]
    fn the_text_patterns_say_what_check_text_and_trim_say() {
        assert!(matches(&no_control(), "楼上 漏水\n"));
        assert!(!matches(&no_control(), "a\u{0}b"));
        assert!(!matches(&not_blank(), " \n "));
        assert!(matches(&not_blank(), " x "));
        let four = at_least_trimmed(4);
        for text in ["核实身份", "  abcd  ", "ab c", "abc", " a  b ", "    ", "x\n\ny", "\u{3000}核实\u{3000}"] {
            assert_eq!(matches(&four, text), text.trim().chars().count() >= 4, "{text:?}");
        }
        assert!(!matches(&four, "abcd\u{7}"));
        assert!(!matches(&four, "abcd\u{b}"), "a vertical tab is a control character, not trimmed");
    }
}
