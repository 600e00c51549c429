//! The static files of the web client, embedded in the binary from `chatd/web/`.
//!
//! Every file under `chatd/web/` is served at its path; `build.rs` lists them,
//! with an ETag each and a gzip copy made at build time.

/// One embedded file.
pub(crate) struct Asset {
    /// Request path it answers.
    pub(crate) path: &'static str,
    /// `Content-Type` header.
    pub(crate) content_type: &'static str,
    /// Strong validator of `body` (quoted hash); the gzip copy's is the same with `-gz` inside the quotes.
    pub(crate) etag: &'static str,
    /// The bytes.
    pub(crate) body: &'static [u8],
    /// The bytes gzipped, when that is smaller.
    pub(crate) gzip: Option<&'static [u8]>,
}

impl Asset {
    /// The ETag of the representation sent: `gzip` or identity.
    pub(crate) fn etag_of(&self, gzip: bool) -> String {
        if gzip {
            format!("{}-gz\"", &self.etag[..self.etag.len() - 1])
        } else {
            self.etag.to_owned()
        }
    }

    /// Whether an `If-None-Match` value names this file's current bytes (in either encoding), or is `*`.
    pub(crate) fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || tag == self.etag || tag == self.etag_of(true)
        })
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (listed, and not with `q=0`).
pub(crate) fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file for a request path (`/index.html` is `/`).
pub(crate) fn lookup(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_file_has_a_smaller_gzip_copy_and_an_etag() {
        for a in ASSETS {
            assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && a.etag.len() == 18);
            if a.content_type.starts_with("text/") && a.body.len() > 1024 {
                let gz = a
                    .gzip
                    .unwrap_or_else(|| panic!("{} has no gzip copy", a.path));
                assert!(gz.len() < a.body.len(), "{}", a.path);
            }
        }
    }

    #[test]
    fn if_none_match_names_either_encoding() {
        let a = lookup("/").expect("index.html");
        assert!(a.matches(a.etag));
        assert!(a.matches(&a.etag_of(true)));
        assert!(a.matches(&format!("\"x\", W/{}", a.etag)));
        assert!(a.matches("*"));
        assert!(!a.matches("\"0000000000000000\""));
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
    }
}
