//! TLS with Redis's option names: the server side for `tls-port` (certificate, key, and the
//! CA that client certificates must chain to when `tls-auth-clients` asks for them), and the
//! client side the proxy uses towards nodes.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

pub use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// What a TLS setup failed on: always names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} '{path}': {source}")]
    File {
        what: &'static str,
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what} '{path}' holds no PEM {expected}")]
    Empty {
        what: &'static str,
        path: String,
        expected: &'static str,
    },
    #[error("tls-cert-file and tls-key-file are needed for TLS")]
    MissingCertificate,
    #[error("tls-ca-cert-file is needed to check client certificates (tls-auth-clients {0})")]
    MissingCa(&'static str),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Redis's `tls-auth-clients`: whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    No,
    Optional,
    Yes,
}

impl ClientAuth {
    pub fn parse(value: &str) -> Option<ClientAuth> {
        match value.to_ascii_lowercase().as_str() {
            "no" => Some(ClientAuth::No),
            "optional" => Some(ClientAuth::Optional),
            "yes" => Some(ClientAuth::Yes),
            _ => None,
        }
    }
}

/// The files a TLS endpoint is configured with (empty strings are "not set").
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert_file: String,
    pub key_file: String,
    pub ca_cert_file: String,
}

fn certificates(what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::File {
            what,
            path: path.to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_string(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "tls-key-file",
            path: path.to_string(),
            expected: "private key",
        },
        source => TlsError::File {
            what: "tls-key-file",
            path: path.to_string(),
            source,
        },
    })
}

fn roots(path: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates("tls-ca-cert-file", path)? {
        store.add(cert)?;
    }
    Ok(Arc::new(store))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor for a `tls-port` listener.
///
/// # Errors
/// A missing or unreadable file, a key that does not match, or client authentication asked
/// for without a CA.
pub fn acceptor(files: &TlsFiles, auth: ClientAuth) -> Result<TlsAcceptor, TlsError> {
    if files.cert_file.is_empty() || files.key_file.is_empty() {
        return Err(TlsError::MissingCertificate);
    }
    let certs = certificates("tls-cert-file", &files.cert_file)?;
    let key = private_key(&files.key_file)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match auth {
        ClientAuth::No => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Yes => {
            if files.ca_cert_file.is_empty() {
                return Err(TlsError::MissingCa(if auth == ClientAuth::Yes {
                    "yes"
                } else {
                    "optional"
                }));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                roots(&files.ca_cert_file)?,
                provider(),
            );
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    let config = builder.with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connector the proxy uses towards nodes: trusts `ca_cert_file`, and presents
/// `cert_file`/`key_file` when both are set (for nodes with `tls-auth-clients yes`).
///
/// # Errors
/// A missing or unreadable file.
pub fn connector(files: &TlsFiles) -> Result<TlsConnector, TlsError> {
    if files.ca_cert_file.is_empty() {
        return Err(TlsError::MissingCa("for node connections"));
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&files.ca_cert_file)?);
    let config = if files.cert_file.is_empty() || files.key_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_auth_cert(
            certificates("tls-client-cert-file", &files.cert_file)?,
            private_key(&files.key_file)?,
        )?
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name a node's certificate must carry: the host part of `host:port` (an IP address
/// is checked against the certificate's IP SANs).
///
/// # Errors
/// A host that is neither a DNS name nor an IP address.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("bad TLS server name '{host}': {e}"))
}

/// How long a TLS client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `tls-port` listener and the acceptor its connections shake hands with.
pub struct TlsListener {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Binds `addr` (port 0 asks the OS) for TLS clients.
    ///
    /// # Errors
    /// The OS error when the address cannot be bound.
    pub async fn bind(addr: &str, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let (listener, addr) = crate::bind(addr).await?;
        // Not `addr=`: tests read the plain port from the first `addr=` in the log.
        tracing::info!(tls_addr = %addr, "TLS port ready");
        Ok(TlsListener {
            listener,
            addr,
            acceptor,
        })
    }
}

/// The next connection on the plain listener or on the TLS one (if any); a TLS connection
/// comes with the acceptor to finish its [`handshake`] with.
pub async fn accept(
    plain: &TcpListener,
    tls: Option<&TlsListener>,
) -> (
    std::io::Result<(TcpStream, SocketAddr)>,
    Option<TlsAcceptor>,
) {
    let on_tls = async {
        match tls {
            Some(t) => (t.listener.accept().await, Some(t.acceptor.clone())),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        accepted = plain.accept() => (accepted, None),
        accepted = on_tls => accepted,
    }
}

/// A TLS client's handshake, given [`HANDSHAKE_TIMEOUT`] to finish.
///
/// # Errors
/// A failed handshake, or `TimedOut`.
pub async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<server::TlsStream<TcpStream>> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Writes all of `bytes`. The flush is free on plain TCP; TLS needs it to push out the
/// records it still holds.
///
/// # Errors
/// The write's or the flush's.
pub async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A stream that is either plain TCP or TLS over it, so one connection loop serves both ports.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection the proxy opened to a node: plain TCP, or TLS over it (`node-tls yes`).
pub enum MaybeTls<S> {
    Plain(S),
    Tls(Box<client::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
