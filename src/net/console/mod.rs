//! The web console on the admin port: a page at `/ui/` that shows what the server is doing
//! (overview charts, query shapes with their plans, current operations, collections, the log
//! tail) from the JSON endpoints under `/api/`. Its assets are compiled into the binary and
//! reference nothing outside it; uPlot, the charting library, is vendored under
//! `assets/vendor/` with its licence (see `LICENSE-AUDIT.md`).
//!
//! The assets are public: they hold no data, and the page asks for the admin token when an
//! endpoint answers 401. The endpoints are guarded as `/config` is. The console is read-only
//! unless the request proved itself to a configured guard (the bearer token or a client
//! certificate): then it may also `killOp`.

mod api;
mod commands;
mod overview;
mod plan_hint;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderValue, LOCATION, X_CONTENT_TYPE_OPTIONS};
use hyper::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

pub use api::{ApiCall, Server, answer};
pub use commands::Rights;

use crate::obs::Observers;
use crate::state::State;

/// The console's own state: the overview's samples.
pub struct Console {
    history: Arc<overview::OverviewHistory>,
}

impl Console {
    /// The console, sampling the server until `stop`.
    pub fn start(state: Arc<State>, observers: Arc<Observers>, stop: CancellationToken) -> Self {
        let history = Arc::new(overview::OverviewHistory::default());
        tokio::spawn(history.clone().run(state, observers, stop));
        Self { history }
    }
}

/// The page's files, by path under `/ui/`, with their content types.
const ASSETS: [(&str, &str, &[u8]); 6] = [
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("assets/console.js")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("assets/console.css")),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/vendor/uPlot.iife.min.js")),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("assets/vendor/uPlot.min.css")),
    ("index.html", "text/html; charset=utf-8", include_bytes!("assets/index.html")),
    // MIT asks that the notice travel with the code.
    ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8", include_bytes!("assets/vendor/uPlot.LICENSE")),
];

/// Only the page's own files, and no inline script or style attribute, may run or apply.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Whether `path` is one of the console's pages or files (served without the guard).
pub fn is_asset(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// The file at `path`: `/` leads to `/ui/`, and every page (`/ui/`, `/ui/<page>`) is the one
/// HTML page, which routes by its fragment.
pub fn asset(path: &str) -> Response<Full<Bytes>> {
    if matches!(path, "/" | "/ui") {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert(LOCATION, HeaderValue::from_static("/ui/"));
        return response;
    }
    let name = path.strip_prefix("/ui/").unwrap_or_default();
    let name = if name.contains('.') { name } else { "index.html" };
    let Some((_, content_type, body)) = ASSETS.iter().find(|(file, _, _)| *file == name) else {
        let body = serde_json::json!({ "status": "error", "reason": format!("no file {path}") }).to_string();
        return super::http::response(StatusCode::NOT_FOUND, "application/json", Bytes::from(body));
    };
    let mut response = super::http::response(StatusCode::OK, content_type, Bytes::from_static(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The files change only with the binary; revalidating each load keeps an upgrade visible.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_the_one_html_file_and_files_are_found_by_name() {
        assert_eq!(asset("/").status(), StatusCode::FOUND);
        let page = asset("/ui/queries");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers().get(hyper::header::CONTENT_TYPE).map(HeaderValue::as_bytes),
            Some(&b"text/html; charset=utf-8"[..])
        );
        assert!(page.headers().contains_key(CONTENT_SECURITY_POLICY));
        assert_eq!(asset("/ui/vendor/uPlot.min.css").status(), StatusCode::OK);
        assert_eq!(asset("/ui/vendor/uPlot.LICENSE").status(), StatusCode::OK);
        assert_eq!(asset("/ui/../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert!(is_asset("/ui/console.js") && !is_asset("/uix") && !is_asset("/api/overview"));
    }
}
