//! TLS termination with rustls (aws-lc-rs). The certificate and key are PEM files; they are reloaded on
//! SIGHUP and when their modification time changes, without dropping connections: every new handshake
//! uses the newest configuration, established connections keep theirs.

use anyhow::Context;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use tokio_rustls::TlsAcceptor;

/// The certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The current TLS configuration, swappable at run time.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn build(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading TLS certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing TLS certificate {}", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading TLS private key {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Tls {
    /// Loads the files.
    ///
    /// # Errors
    /// Unreadable or mismatched certificate and key.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let cfg = build(&files)?;
        let stamps = (mtime(&files.cert), mtime(&files.key));
        Ok(Tls {
            current: RwLock::new(TlsAcceptor::from(Arc::new(cfg))),
            stamps: Mutex::new(stamps),
            files,
        })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Reloads the files; on failure the previous configuration stays in use.
    pub fn reload(&self) {
        match build(&self.files) {
            Ok(cfg) => {
                if let Ok(mut g) = self.current.write() {
                    *g = TlsAcceptor::from(Arc::new(cfg));
                }
                if let Ok(mut s) = self.stamps.lock() {
                    *s = (mtime(&self.files.cert), mtime(&self.files.key));
                }
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate loaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS reload failed; keeping the current certificate")
            }
        }
    }

    /// Reloads when either file's modification time changed.
    pub fn reload_if_changed(&self) {
        let now = (mtime(&self.files.cert), mtime(&self.files.key));
        let changed = self.stamps.lock().map(|s| *s != now).unwrap_or(false);
        if changed {
            self.reload();
        }
    }

    /// Watches for SIGHUP and file changes (every 2 s) until the task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                #[cfg(unix)]
                {
                    let hup_recv = async {
                        match hup.as_mut() {
                            Some(h) => {
                                h.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        () = hup_recv => {
                            tracing::info!("SIGHUP: reloading the TLS certificate");
                            tls.reload();
                        }
                        _ = tick.tick() => tls.reload_if_changed(),
                    }
                }
                #[cfg(not(unix))]
                {
                    tick.tick().await;
                    tls.reload_if_changed();
                }
            }
        })
    }
}
