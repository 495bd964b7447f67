//! The demo pages and the npm packages they load, built into the binary
//! (the `web` feature), served at `/` unless `server.web_root` names a
//! folder: a binary copied anywhere serves them.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Only what the pages load: the rest of `node_modules` (build tools, Node
/// polyfills) would weigh megabytes in every binary.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
#[include = "*.html"]
#[include = "css/*"]
#[include = "js/*"]
#[include = "admin/*"]
#[include = "sse/*"]
#[include = "v1/*"]
#[include = "node_modules/@stomp/stompjs/esm6/**"]
#[include = "node_modules/@stomp/stompjs/bundles/*"]
#[include = "node_modules/sockjs-client/dist/*"]
#[include = "node_modules/stompjs/lib/*"]
#[include = "node_modules/uplot/dist/*"]
struct Pages;

/// Whether any page was built in (the build found `web/`).
pub fn available() -> bool {
    Pages::get("index.html").is_some()
}

pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let file = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let Some(page) = Pages::get(&file) else {
        // A folder named without its slash, as a file server answers it.
        if Pages::get(&format!("{path}/index.html")).is_some() {
            return Redirect::permanent(&format!("/{path}/")).into_response();
        }
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = format!("\"{}\"", hex(&page.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|given| given == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(page.data.into_owned()).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(page.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    // Revalidated on every load: the pages change with the binary.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
