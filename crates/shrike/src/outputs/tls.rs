//! TLS client settings shared by every output that can speak TLS (syslog over TCP, the
//! webhook, and the HTTP transports built on [`super::http`]): the trust roots (the Mozilla
//! set from `webpki-roots`, or a PEM file of CAs instead) and an optional client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// `tls:` in an output's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust instead of the built-in Mozilla roots (a
    /// private CA, or a self-signed server certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the server (mutual TLS); needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: reading {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("tls: {path} holds no {what} in PEM form")]
    Empty { path: PathBuf, what: &'static str },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls: cert_file and key_file go together: give both or neither")]
    HalfClientCert,
}

impl TlsConfig {
    /// The rustls client configuration these settings describe.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = read_certs(path)?;
                for cert in certs {
                    roots.add(cert)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        // ring rather than aws-lc-rs keeps the build free of cmake and NASM; the price is no
        // post-quantum key exchange, which rustls flags by deprecating this constructor.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key_der = read_key(key)?;
                builder.with_client_auth_cert(chain, key_der)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfClientCert),
        };
        Ok(Arc::new(config))
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Read {
            path: path.to_owned(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|error| TlsError::Read {
            path: path.to_owned(),
            error,
        })?
        .ok_or_else(|| TlsError::Empty {
            path: path.to_owned(),
            what: "private key",
        })
}
