//! The static files of the web client, embedded in the binary from `chatd/web/`.
//!
//! To serve another file, put it in `chatd/web/` and add a line to [`ASSETS`].

/// One embedded file.
pub(crate) struct Asset {
    /// Request path it answers.
    pub(crate) path: &'static str,
    /// `Content-Type` header.
    pub(crate) content_type: &'static str,
    /// The bytes.
    pub(crate) body: &'static [u8],
}

/// Every embedded file.
pub(crate) static ASSETS: &[Asset] = &[Asset {
    path: "/",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../web/index.html"),
}];

/// The file for a request path (`/index.html` is `/`).
pub(crate) fn lookup(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}
