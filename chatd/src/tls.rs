//! TLS on the listener: the rustls configuration and a certificate that can
//! be replaced while chatd runs.
//!
//! Certificates are short-lived (ACME renews every 60-90 days), so the
//! certificate and key files are read again when their modification time or
//! size changes (checked every `--tls-reload-secs`) and on SIGHUP. New
//! handshakes use the new pair; open connections keep the one they started
//! with. A pair that does not load (half-written files, a key that does not
//! match the certificate) is logged and the previous one kept, so a botched
//! renewal never takes the server down.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Size and modification time of a file, to notice a replacement.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The certificate served to every new handshake, replaceable at any time.
#[derive(Debug)]
pub(crate) struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps when last read, successfully or not: a failed
    /// load is retried only once the files change again (or on SIGHUP).
    seen: Mutex<(Stamp, Stamp)>,
}

impl CertStore {
    /// Loads the pair; fails when it does not load (at start-up that is fatal).
    pub(crate) fn open(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = (stamp(cert_path), stamp(key_path));
        let key = load(cert_path, key_path, &provider)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        }))
    }

    /// The rustls server configuration: TLS 1.2 and 1.3 only (rustls
    /// implements nothing older), ALPN `http/1.1`, certificates from `self`.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the files again; on failure logs and keeps the current pair.
    pub(crate) fn reload(&self, why: &'static str) {
        let seen = (stamp(&self.cert_path), stamp(&self.key_path));
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
        match load(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                tracing::info!(
                    cert = %self.cert_path.display(),
                    trigger = why,
                    "TLS certificate reloaded"
                );
            }
            Err(e) => tracing::error!(
                error = %e,
                trigger = why,
                "TLS certificate reload failed; still serving the previous certificate"
            ),
        }
    }

    /// Reloads when either file changed since it was last read.
    fn reload_if_changed(&self) {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        let changed = *self.seen.lock().unwrap_or_else(|p| p.into_inner()) != now;
        if changed {
            self.reload("file change");
        }
    }

    /// Reloads on SIGHUP, and every `poll` when the files changed (never
    /// when `poll` is zero), until `shutdown`.
    pub(crate) fn watch(
        self: Arc<Self>,
        poll: Duration,
        shutdown: CancellationToken,
    ) -> std::io::Result<impl std::future::Future<Output = ()>> {
        let mut sighup = signal(SignalKind::hangup())?;
        Ok(async move {
            let mut ticks = (!poll.is_zero()).then(|| {
                let mut t = tokio::time::interval(poll);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = sighup.recv() => {
                        let store = self.clone();
                        // File reads and key parsing: off the async workers.
                        let _ = tokio::task::spawn_blocking(move || store.reload("SIGHUP")).await;
                    }
                    _ = async {
                        match ticks.as_mut() {
                            Some(t) => t.tick().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        let store = self.clone();
                        let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
                    }
                }
            }
        })
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Read { path, source }
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(read_err(cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err(cert_path))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(read_err(key_path))?;
    Ok(CertifiedKey::from_der(chain, key, provider)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn serving(store: &CertStore) -> Arc<CertifiedKey> {
        store.current.read().unwrap().clone()
    }

    #[test]
    fn reloads_replace_the_pair_and_failed_ones_keep_it() {
        let dir = std::env::temp_dir().join(format!("chatd-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = pair(&dir, "a");
        let (cert_b, key_b) = pair(&dir, "b");
        let store = CertStore::open(&cert, &key).unwrap();
        store.server_config().unwrap();
        let first = serving(&store);

        // Unchanged files: nothing is read.
        store.reload_if_changed();
        assert!(Arc::ptr_eq(&first, &serving(&store)));
        // Garbage, then a key that does not match: the old pair stays.
        std::fs::write(&cert, "not a certificate").unwrap();
        store.reload_if_changed();
        assert!(Arc::ptr_eq(&first, &serving(&store)));
        std::fs::copy(&cert_b, &cert).unwrap();
        store.reload("test");
        assert!(Arc::ptr_eq(&first, &serving(&store)));
        // The matching key arrives: the new pair is served.
        std::fs::copy(&key_b, &key).unwrap();
        store.reload_if_changed();
        let second = serving(&store);
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(
            second.cert,
            vec![CertificateDer::from_pem_file(&cert_b).unwrap()]
        );

        std::fs::write(&key, "").unwrap();
        assert!(matches!(
            CertStore::open(&cert, &key),
            Err(TlsError::Read { .. })
        ));
        std::fs::write(&cert, "").unwrap();
        assert!(matches!(
            CertStore::open(&cert, &key_b),
            Err(TlsError::NoCertificate(_))
        ));
        assert!(CertStore::open(&dir.join("missing.pem"), &key_b).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
