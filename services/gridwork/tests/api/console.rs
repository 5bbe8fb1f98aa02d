//! The web console as served: the page and its assets from the binary, a
//! strict Content-Security-Policy, long caching for hashed assets only, the
//! page for any in-app path, 404 for a file that is not there.

use crate::helpers;
use serde_json::Value;

#[actix_web::test]
async fn the_console_is_served_with_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = plain.get(format!("{}/console", app.base)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (308, "/console/"));

    let page = app.http.get(format!("{}/console/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"), "{h:?}");
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    // No inline script: every script has a src on our own origin.
    for tag in html.split("<script").skip(1) {
        let head = tag.split('>').next().unwrap();
        assert!(head.contains("src=\"/console/"), "an inline or foreign script: <script{head}>");
    }

    // The page's own paths are the page (its routes live in the URL).
    let deep = app.http.get(format!("{}/console/cases/abc?status=open", app.base)).send().await.unwrap();
    assert_eq!(deep.status(), 200);
    assert_eq!(deep.text().await.unwrap(), html);
    let missing = app.http.get(format!("{}/console/assets/no-such-file.js", app.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // Every asset the page names is served, cached for a year.
    let mut assets = 0;
    for part in html.split("/console/assets/").skip(1) {
        let name = part.split(['"', '\'']).next().unwrap();
        let r = app.http.get(format!("{}/console/assets/{name}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable", "{name}");
        assets += 1;
    }
    eprintln!("console: page and {assets} assets served");
    app.shutdown().await;
}

/// The console's typed client is generated from `console/openapi.json`
/// (openapi-typescript): that file must be the document the code serves,
/// so a change of the API shows up as a type error in the console's build.
#[actix_web::test]
async fn the_consoles_copy_of_the_document_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let served: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../console/openapi.json");
    let copy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        served == copy,
        "console/openapi.json is not the document gridwork serves: copy /openapi.json of `gridwork up` there, \
         run `npm run gen:api` in console/ and rebuild (scripts/console.sh check)"
    );
    app.shutdown().await;
}
