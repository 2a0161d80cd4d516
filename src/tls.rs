//! HTTPS for the API: `server.tls_cert` and `server.tls_key` (PEM) give a
//! rustls server configuration (ring, TLS 1.2 and 1.3).
//! Everything that can be wrong with the files is found here, at start-up,
//! and said with the key and the path.

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use std::{path::Path, sync::Arc};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// Reads the certificate chain and its key and checks that they belong
/// together.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        TlsError(format!(
            "server.tls_key {}: {}",
            key.display(),
            pem_problem(e, "a PEM private key (PKCS#8, PKCS#1 or SEC1)")
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ALPN is actix's to set: it offers http/1.1 (and h2 when built with it).
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            TlsError(format!(
                "server.tls_cert {} and server.tls_key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            ))
        })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |what: String| TlsError(format!("server.tls_cert {}: {what}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_problem(e, "PEM certificates")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_problem(e, "PEM certificates")))?;
    if certs.is_empty() {
        return Err(fail(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// Plain words for a PEM reading error.
fn pem_problem(e: rustls::pki_types::pem::Error, wanted: &str) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read it: {e}"),
        Error::NoItemsFound => format!("holds no {wanted}"),
        other => format!("is not {wanted}: {other}"),
    }
}
