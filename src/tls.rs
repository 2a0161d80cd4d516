//! HTTPS for the API: `server.tls_cert` and `server.tls_key` (PEM) give a
//! rustls server configuration (ring, TLS 1.2 and 1.3). And for the agent's
//! own HTTP clients (remote write, the command-line client): the roots they
//! trust and the secrets they send.
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
        let encrypted =
            std::fs::read(key).is_ok_and(|b| String::from_utf8_lossy(&b).contains("ENCRYPTED"));
        let why = if encrypted {
            "is encrypted; the agent needs it in the clear (`openssl pkey -in KEY -out KEY.plain`, \
             then make that file readable by root only)"
                .to_owned()
        } else {
            pem_problem(e, "PEM private key (PKCS#8, PKCS#1 or SEC1)")
        };
        TlsError(format!("server.tls_key {}: {why}", key.display()))
    })?;
    warn_if_readable_by_others(key);
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
        .map_err(|e| fail(pem_problem(e, "PEM certificate")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_problem(e, "PEM certificate")))?;
    if certs.is_empty() {
        return Err(fail(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// A private key others can read lets them pose as the agent and collect
/// the tokens clients send it.
fn warn_if_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(key)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %key.display(),
            mode = format!("{:o}", m.permissions().mode() & 0o777),
            "server.tls_key is readable by others: make it 0600"
        );
    }
}

/// Plain words for a PEM reading error.
fn pem_problem(e: rustls::pki_types::pem::Error, wanted: &str) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read it: {e}"),
        Error::NoItemsFound => format!("holds no {wanted}"),
        other => format!("is not a {wanted}: {other}"),
    }
}

/// The roots an HTTPS client trusts: the PEM certificates in `ca`, or the
/// webpki roots when none is given.
pub fn client_roots(ca: Option<&Path>) -> Result<ureq::tls::RootCerts, String> {
    use ureq::tls::{PemItem, RootCerts};
    let Some(path) = ca else {
        return Ok(RootCerts::WebPki);
    };
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(RootCerts::from(certs))
}

/// A secret kept in a file (`what` names the key), to be sent in a header:
/// one line of visible characters, the line end left out.
pub fn read_header_secret(path: &Path, what: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(format!("{what} {} is empty", path.display()));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} {} holds a control character or a second line",
            path.display()
        ));
    }
    Ok(text.to_owned())
}
