//! The static files of the web client, embedded in the binary from `chatd/web/`.
//!
//! Every file under `chatd/web/` is served at its path; `build.rs` lists them.

/// One embedded file.
pub(crate) struct Asset {
    /// Request path it answers.
    pub(crate) path: &'static str,
    /// `Content-Type` header.
    pub(crate) content_type: &'static str,
    /// The bytes.
    pub(crate) body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file for a request path (`/index.html` is `/`).
pub(crate) fn lookup(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}
