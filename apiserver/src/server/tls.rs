//! Serving certificates: loaded from PEM files, or generated self-signed into the cert dir when
//! none are given (as kube-apiserver does with `--cert-dir`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its key, as PEM, and the CA that signed it when it was generated.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA certificate clients should trust (generated pairs only).
    pub ca_pem: Option<String>,
}

impl CertPair {
    /// Reads a certificate and a key file.
    pub fn load(cert: &Path, key: &Path) -> Result<CertPair, TlsError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(CertPair {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            ca_pem: None,
        })
    }

    /// A serving certificate for `localhost`, `127.0.0.1`, `::1`, the in-cluster names and
    /// `extra_names`, signed by a new CA (as kube-apiserver does when given no certificate:
    /// clients such as rustls refuse a CA certificate used as the server's own).
    pub fn self_signed(extra_names: &[String]) -> Result<CertPair, TlsError> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry-ca");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
        ];
        names.extend(extra_names.iter().cloned());
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry-apiserver");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer)?;
        Ok(CertPair {
            cert_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
            key_pem: key.serialize_pem(),
            ca_pem: Some(ca_cert.pem()),
        })
    }

    /// The pair in `dir` (`apiserver.crt`, `apiserver.key`, and the CA in `ca.crt`), generated
    /// and written there first if it is not there yet.
    pub fn in_cert_dir(dir: &Path) -> Result<CertPair, TlsError> {
        let (cert, key, ca) = (
            dir.join("apiserver.crt"),
            dir.join("apiserver.key"),
            dir.join("ca.crt"),
        );
        if cert.exists() && key.exists() {
            let mut pair = CertPair::load(&cert, &key)?;
            pair.ca_pem = std::fs::read_to_string(&ca).ok();
            return Ok(pair);
        }
        let pair = CertPair::self_signed(&[])?;
        let write = |path: &Path, data: &str| {
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(path, data))
                .map_err(|source| TlsError::Write {
                    path: path.to_owned(),
                    source,
                })
        };
        write(&cert, &pair.cert_pem)?;
        write(&key, &pair.key_pem)?;
        write(&ca, pair.ca_pem.as_deref().unwrap_or_default())?;
        Ok(pair)
    }

    /// A rustls server config offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .filter_map(Result::ok)
                .collect();
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: PathBuf::from("<certificate>"),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|_| {
            TlsError::NoKey {
                path: PathBuf::from("<key>"),
            }
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
