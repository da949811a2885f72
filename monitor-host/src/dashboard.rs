//! The web dashboard: a single-page application compiled into the binary, served at `/` with its
//! assets under `/assets/<version>/...`.
//!
//! The assets (`assets/dashboard/`: HTML, CSS and JavaScript modules, no build step) are included
//! with `include_bytes!`, so the dashboard works offline and the binary carries it whole (tens of
//! kilobytes). The page reads the host's JSON APIs (`/api/snapshot`, `/api/v1/...`) and draws its
//! charts as SVG.
//!
//! Caching: `<version>` is a hash of every asset, computed at compile time, so an asset URL names
//! one content forever and is served `immutable` for a year; the page itself is `no-cache` (it
//! names the current version). Each answer carries an `ETag` (the version), and a request whose
//! `If-None-Match` names it is answered 304. An asset asked for under another version (a page
//! loaded before an upgrade) is served as it is now, `no-cache`.

use monitor_core::http::{Request, Response};

/// One file of the dashboard.
#[derive(Debug, Clone, Copy)]
struct Asset {
    /// Path under `/assets/<version>/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/dashboard/", $name)),
        }
    };
}

/// Every asset; `index.html` is the page at `/`.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("chart.js", JS),
    asset!("format.js", JS),
    asset!("panels.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/series.js", JS),
    asset!("pages/apps.js", JS),
    asset!("pages/alerts.js", JS),
];

/// FNV-1a over every asset's name and body: changes whenever any asset does.
const fn assets_hash() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut a = 0;
    while a < ASSETS.len() {
        let parts = [ASSETS[a].name.as_bytes(), ASSETS[a].body];
        let mut p = 0;
        while p < parts.len() {
            let bytes = parts[p];
            let mut i = 0;
            while i < bytes.len() {
                hash ^= bytes[i] as u64;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
                i += 1;
            }
            p += 1;
        }
        a += 1;
    }
    hash
}

const fn hex(mut n: u64) -> [u8; 16] {
    let digits = b"0123456789abcdef";
    let mut out = [0u8; 16];
    let mut i = 16;
    while i > 0 {
        i -= 1;
        out[i] = digits[(n & 0xf) as usize];
        n >>= 4;
    }
    out
}

const VERSION_HEX: [u8; 16] = hex(assets_hash());

/// The assets' version: 16 hex digits, part of every asset URL.
pub const VERSION: &str = match std::str::from_utf8(&VERSION_HEX) {
    Ok(v) => v,
    Err(_) => panic!("hex digits are ASCII"),
};

/// `Cache-Control` of the page and of assets asked for under another version.
const REVALIDATE: &str = "no-cache";
/// `Cache-Control` of an asset under the current version: its URL names its content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A dashboard answer, with the headers the HTTP layer should send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// 200, 304 or 404.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control` and `ETag`.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for 304).
    pub body: &'static [u8],
}

impl Page {
    fn found(asset: &Asset, body: &'static [u8], cache_control: &'static str) -> Self {
        Self {
            status: 200,
            content_type: asset.content_type,
            headers: vec![
                ("Cache-Control", cache_control.to_owned()),
                ("ETag", etag()),
            ],
            body,
        }
    }

    fn not_modified(cache_control: &'static str) -> Self {
        Self {
            status: 304,
            content_type: "text/plain",
            headers: vec![
                ("Cache-Control", cache_control.to_owned()),
                ("ETag", etag()),
            ],
            body: b"",
        }
    }

    /// This answer as the HTTP layer's response, with its `Cache-Control` and `ETag`.
    pub fn into_response(self) -> Response {
        let mut response = Response::new(self.status, self.content_type, self.body);
        for (name, value) in self.headers {
            response = response.with_header(name, value);
        }
        response
    }
}

fn etag() -> String {
    format!("\"{VERSION}\"")
}

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The page at `/`, its asset URLs naming [`VERSION`].
fn index() -> &'static [u8] {
    static INDEX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            let html = asset("index.html").map_or(&b""[..], |a| a.body);
            String::from_utf8_lossy(html).replace("{{version}}", VERSION)
        })
        .as_bytes()
}

/// Whether an `If-None-Match` header names the current version (or is `*`).
fn matches(if_none_match: Option<&str>) -> bool {
    let tag = etag();
    if_none_match.is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == tag || t == "*")
    })
}

/// Answers `path` when it is the dashboard's (`/`, `/index.html` or under `/assets/`), with
/// `if_none_match` the request's `If-None-Match` header if any; `None` for any other path.
pub fn page(path: &str, if_none_match: Option<&str>) -> Option<Page> {
    if path == "/" || path == "/index.html" {
        let html = asset("index.html")?;
        if matches(if_none_match) {
            return Some(Page::not_modified(REVALIDATE));
        }
        return Some(Page::found(html, index(), REVALIDATE));
    }
    let rest = path.strip_prefix("/assets/")?;
    let not_found = Page {
        status: 404,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: b"no such dashboard asset\n",
    };
    let Some((version, name)) = rest.split_once('/') else {
        return Some(not_found);
    };
    let Some(found) = asset(name).filter(|a| a.name != "index.html") else {
        return Some(not_found);
    };
    if version != VERSION {
        return Some(Page::found(found, found.body, REVALIDATE));
    }
    if matches(if_none_match) {
        return Some(Page::not_modified(IMMUTABLE));
    }
    Some(Page::found(found, found.body, IMMUTABLE))
}

/// The route-table entry: the dashboard's answer to a `GET` of one of its paths, else `None`.
pub fn handle(request: &Request<'_>) -> Option<Response> {
    if request.method != "GET" && request.method != "HEAD" {
        return None;
    }
    page(request.path, request.header("if-none-match")).map(Page::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'p>(p: &'p Page, name: &str) -> &'p str {
        p.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn the_page_names_the_versioned_assets_and_is_revalidated() {
        let p = page("/", None).unwrap();
        assert_eq!(p.status, 200);
        assert_eq!(p.content_type, HTML);
        assert_eq!(header(&p, "Cache-Control"), "no-cache");
        let html = std::str::from_utf8(p.body).unwrap();
        assert!(!html.contains("{{version}}"), "{html}");
        assert!(
            html.contains(&format!("/assets/{VERSION}/app.js")),
            "{html}"
        );
        assert!(
            html.contains(&format!("/assets/{VERSION}/style.css")),
            "{html}"
        );
        assert_eq!(page("/index.html", None).unwrap().body, p.body);
    }

    #[test]
    fn assets_have_their_content_types_and_are_immutable_under_the_version() {
        for (name, content_type) in [("app.js", JS), ("style.css", CSS), ("pages/series.js", JS)] {
            let p = page(&format!("/assets/{VERSION}/{name}"), None).unwrap();
            assert_eq!(p.status, 200, "{name}");
            assert_eq!(p.content_type, content_type, "{name}");
            assert_eq!(header(&p, "Cache-Control"), IMMUTABLE, "{name}");
            assert_eq!(header(&p, "ETag"), format!("\"{VERSION}\""));
            assert!(!p.body.is_empty());
        }
    }

    #[test]
    fn an_asset_under_another_version_is_served_but_revalidated() {
        let p = page("/assets/0000000000000000/app.js", None).unwrap();
        assert_eq!(p.status, 200);
        assert_eq!(header(&p, "Cache-Control"), "no-cache");
        assert_eq!(p.body, asset("app.js").unwrap().body);
    }

    #[test]
    fn unknown_assets_are_404_and_other_paths_are_not_the_dashboards() {
        for path in [
            format!("/assets/{VERSION}/nope.js"),
            format!("/assets/{VERSION}/../Cargo.toml"),
            format!("/assets/{VERSION}/index.html"),
            "/assets/app.js".to_owned(),
            "/assets/".to_owned(),
        ] {
            assert_eq!(page(&path, None).unwrap().status, 404, "{path}");
        }
        assert!(page("/metrics", None).is_none());
        assert!(page("/api/snapshot", None).is_none());
        assert!(page("/assetsx", None).is_none());
    }

    #[test]
    fn a_matching_etag_is_answered_304() {
        let tag = format!("\"{VERSION}\"");
        let p = page(&format!("/assets/{VERSION}/app.js"), Some(&tag)).unwrap();
        assert_eq!((p.status, p.body), (304, &b""[..]));
        let weak = format!("\"other\", W/{tag}");
        assert_eq!(page("/", Some(&weak)).unwrap().status, 304);
        assert_eq!(page("/", Some("\"other\"")).unwrap().status, 200);
    }

    #[test]
    fn only_reads_are_answered() {
        let get = Request {
            method: "GET",
            path: "/",
            query: "",
            ..Request::default()
        };
        assert_eq!(handle(&get).unwrap().status, 200);
        let post = Request {
            method: "POST",
            ..get
        };
        assert!(handle(&post).is_none());
    }

    #[test]
    fn every_module_an_asset_imports_is_served() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.name.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
                for part in spec.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let target = parts.join("/");
                assert!(asset(&target).is_some(), "{} imports {spec}", a.name);
            }
        }
    }

    #[test]
    fn the_version_is_sixteen_hex_digits() {
        assert_eq!(VERSION.len(), 16);
        assert!(VERSION.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
