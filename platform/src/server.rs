//! The one launcher of every Locus listener.
//!
//! `actix_web::HttpServer` hands the connection straight to actix-http's
//! HTTP/1 dispatcher, whose codec answers some requests itself, before any
//! service or middleware runs, with an empty body (a control byte in a
//! header, `Content-Length` with `Transfer-Encoding`, more than 96 header
//! fields, a head not received in time). [`serve`] builds the same server
//! over a connection type, [`EdgeStream`], that gives those answers the JSON
//! error body every other error has.

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive, Protocol, Request, Response};
use actix_server::GracefulShutdownSignal;
use actix_service::{
    fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt as _,
};
use actix_tls::accept::openssl::{Acceptor, TlsStream};
use actix_tls::accept::TlsError;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Extensions, Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use openssl::ssl::{AlpnError, SslAcceptorBuilder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::{describe, headers_too_large, ErrorBody};

/// Seconds a stopping server gives open connections to finish.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// Called once per connection with the stream under HTTP (for TLS, the
/// `TlsStream<TcpStream>`), as `HttpServer::on_connect` is; see
/// [`crate::tls::record_peer_certificate`].
pub type OnConnect = fn(&dyn Any, &mut Extensions);

/// What `HttpServer` asks of an app's service factory, named once for [`serve`]
/// and each worker's service (bounds on the associated types, so users get them).
pub trait AppFactory<B>:
    ServiceFactory<
        Request,
        Config = AppConfig,
        Error: Into<actix_web::Error> + 'static,
        InitError: std::fmt::Debug,
        Response: Into<Response<B>> + 'static,
    > + 'static
{
}

impl<S, B> AppFactory<B> for S
where
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
{
}

/// Serves `app` on `listener`: over TLS with `tls` (HTTP/1.1, ALPN
/// `http/1.1`), else plain HTTP/1.1; `on_connect` runs for each connection.
/// Everything else is `HttpServer`'s default (workers, keep-alive, request
/// and TLS handshake timeouts), with a shutdown timeout of
/// [`SHUTDOWN_TIMEOUT_SECS`].
pub fn serve<F, I, S, B>(
    app: F,
    listener: TcpListener,
    tls: Option<SslAcceptorBuilder>,
    on_connect: Option<OnConnect>,
) -> io::Result<Serving>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: AppFactory<B>,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let builder = Server::build().shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let signal = builder.graceful_shutdown_signal();
    let name = format!("locus-{addr}");
    let builder = match tls {
        Some(tls) => {
            let acceptor = http11_only(tls)?;
            builder.listen(name, listener, move || {
                let http = http_service(&app, addr, true, signal.clone(), on_connect);
                Acceptor::new(acceptor.clone())
                    .map_err(TlsError::into_service_error)
                    .map(|io: TlsStream<TcpStream>| {
                        let peer = io.get_ref().peer_addr().ok();
                        (EdgeStream::new(io), Protocol::Http1, peer)
                    })
                    .and_then(http.map_err(TlsError::Service))
            })?
        }
        None => builder.listen(name, listener, move || {
            let http = http_service(&app, addr, false, signal.clone(), on_connect);
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((EdgeStream::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?,
    };
    Ok(Serving(builder.run()))
}

/// A server [`serve`] started: awaiting it serves until SIGINT, SIGTERM or
/// its [`handle`](Self::handle) stops it.
pub struct Serving(Server);

impl Serving {
    pub fn handle(&self) -> ServerHandle {
        self.0.handle()
    }
}

impl Future for Serving {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").finish_non_exhaustive()
    }
}

/// One worker's HTTP service over `EdgeStream<T>`, configured as
/// `HttpServer` configures its own.
fn http_service<T, F, I, S, B>(
    app: &F,
    addr: SocketAddr,
    secure: bool,
    signal: GracefulShutdownSignal,
    on_connect: Option<OnConnect>,
) -> impl ServiceFactory<
    (EdgeStream<T>, Protocol, Option<SocketAddr>),
    Config = (),
    Response = (),
    Error = DispatchError,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Fn() -> I,
    I: IntoServiceFactory<S, Request>,
    S: AppFactory<B>,
    B: MessageBody + 'static,
{
    let mut builder = HttpService::build()
        .graceful_shutdown_signal(move || {
            let signal = signal.clone();
            async move { signal.notified().await }
        })
        .keep_alive(KeepAlive::default())
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .h1_allow_half_closed(true)
        .local_addr(addr);
    if let Some(hook) = on_connect {
        builder = builder.on_connect_ext(move |io: &EdgeStream<T>, ext: &mut Extensions| {
            hook(io.get_ref() as &dyn Any, ext)
        });
    }
    let app = app().into_factory().map_err(|e| e.into().error_response());
    // `AppConfig::new` is crate-private; this is its public twin (what
    // actix-test builds apps with), the host as `HttpServer` sets it.
    let host = addr.to_string();
    builder.finish(map_config(app, move |()| {
        AppConfig::__priv_test_new(secure, host.clone(), addr)
    }))
}

/// `HttpServer::listen_openssl`'s ALPN without HTTP/2: `http/1.1` or nothing.
fn http11_only(mut tls: SslAcceptorBuilder) -> io::Result<openssl::ssl::SslAcceptor> {
    const H11: &[u8] = b"\x08http/1.1";
    tls.set_alpn_select_callback(|_, offered| {
        if offered.windows(H11.len()).any(|w| w == H11) {
            Ok(b"http/1.1")
        } else {
            Err(AlpnError::NOACK)
        }
    });
    tls.set_alpn_protos(H11).map_err(io::Error::other)?;
    Ok(tls.build())
}

/// The connection under the HTTP/1 dispatcher: reads pass through; a write
/// that is a whole error response the codec made on its own (see
/// [`codec_error_as_json`]) goes out with the JSON error body instead.
#[derive(Debug)]
pub struct EdgeStream<T> {
    inner: T,
    /// A rewritten response not yet all written, and how much of it is.
    pending: Vec<u8>,
    sent: usize,
}

impl<T> EdgeStream<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }

    /// The stream itself (for TLS, where the peer's certificate is).
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncWrite + Unpin> EdgeStream<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EdgeStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(json) = codec_error_as_json(buf) {
            self.pending = json;
            // Accepted whole: what is not written yet goes out before any
            // later write, flush or shutdown.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The JSON form of `write` when it is a response the HTTP/1 codec made
/// itself: an error status, `content-length: 0`, no `content-type`, nothing
/// after the head. Every error response of a Locus app has a JSON body
/// (`HttpEdges`), so only the codec writes that; anything else is `None`,
/// at the cost of one comparison for a write that is not an error's head.
pub fn codec_error_as_json(write: &[u8]) -> Option<Vec<u8>> {
    if write.len() < 16
        || !write.starts_with(b"HTTP/1.")
        || write[8] != b' '
        || !matches!(write[9], b'4' | b'5')
        || !write.ends_with(b"\r\n\r\n")
    {
        return None;
    }
    // Every line of the head, each ending in CRLF.
    let head = write[..write.len() - 2].strip_suffix(b"\n")?;
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r"));
    let status_line = lines.next()??;
    let status = std::str::from_utf8(status_line.get(9..12)?).ok()?;
    let status = StatusCode::from_u16(status.parse().ok()?).ok()?;
    let mut kept = Vec::new();
    let mut empty = false;
    for line in lines {
        // A bare `\n` or an empty line: not one head ending at this write's end.
        let line = line?;
        let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
        let value = value[1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            if value != b"0" || empty {
                return None;
            }
            empty = true;
        } else if name.eq_ignore_ascii_case(b"content-type")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
        {
            return None;
        } else {
            kept.push(line);
        }
    }
    if !empty {
        return None;
    }
    let (error, message) = codec_refusal(status);
    tracing::info!(
        status = status.as_u16(),
        code = error.as_str(),
        "request refused by the HTTP/1 parser"
    );
    let body = serde_json::to_vec(&ErrorBody { error, message }).ok()?;
    let mut out = Vec::with_capacity(write.len() + body.len() + 64);
    out.extend_from_slice(status_line);
    for line in kept {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// What the codec's answer means, as the app would have said it: a code and
/// a sentence.
fn codec_refusal(status: StatusCode) -> (String, String) {
    match status {
        StatusCode::BAD_REQUEST => (
            "bad_request".to_owned(),
            "the request is not well-formed HTTP/1.1: a request line or header that cannot be \
             parsed (a control byte in a header, for one) or ambiguous framing (Content-Length \
             with Transfer-Encoding, for one)"
                .to_owned(),
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            let refusal = headers_too_large();
            (refusal.code.to_owned(), refusal.message)
        }
        _ => {
            let (code, message) = describe(status);
            (code, message.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const DATE: &str = "date: Tue, 01 Jul 2025 10:00:00 GMT";

    /// Status line, headers and body of a rewritten response, checked for a
    /// `content-length` that is the body's.
    fn parse(bytes: &[u8]) -> (String, Vec<String>, Value) {
        let text = std::str::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n").map(str::to_owned);
        let status = lines.next().unwrap();
        let headers: Vec<String> = lines.collect();
        let length = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{text}");
        (status, headers, serde_json::from_str(body).unwrap())
    }

    /// What the connection sends for a codec refusal, parsed.
    fn json_answer(codec: &[u8]) -> (String, Vec<String>, Value) {
        parse(&codec_error_as_json(codec).expect("a codec refusal is rewritten"))
    }

    /// [`json_answer`] to a codec refusal of `status` with `headers` and a date,
    /// whose status line is kept.
    fn dated_answer(status: &str, headers: &str) -> (Vec<String>, Value) {
        let (line, headers, body) =
            json_answer(format!("{status}\r\n{headers}{DATE}\r\n\r\n").as_bytes());
        assert_eq!(line, status);
        (headers, body)
    }

    #[test]
    fn a_bad_request_from_the_codec_gets_the_json_body() {
        let (headers, body) = dated_answer(
            "HTTP/1.1 400 Bad Request",
            "content-length: 0\r\nconnection: close\r\n",
        );
        assert!(
            headers.contains(&"connection: close".to_owned()),
            "{headers:?}"
        );
        assert!(headers.contains(&DATE.to_owned()), "{headers:?}");
        assert!(headers.contains(&"content-type: application/json".to_owned()));
        assert_eq!(
            headers
                .iter()
                .filter(|h| h.starts_with("content-length"))
                .count(),
            1
        );
        assert_eq!(body["error"], "bad_request");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }

    #[test]
    fn too_many_headers_says_so_in_the_same_words_as_the_middleware() {
        let (_, body) = dated_answer(
            "HTTP/1.1 431 Request Header Fields Too Large",
            "Content-Length: 0\r\n",
        );
        assert_eq!(body["error"], "headers_too_large");
        assert_eq!(body["message"], headers_too_large().message);
    }

    #[test]
    fn a_timeout_and_an_internal_error_are_described_too() {
        let (_, _, body) =
            json_answer(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(body["error"], "timeout");
        let (_, _, body) =
            json_answer(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(body["error"], "internal");
    }

    #[test]
    fn everything_else_passes_untouched() {
        for write in [
            // Successes, and errors the app wrote (JSON, or a body follows).
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 40\r\ncontent-type: application/json\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n",
            // Not one whole head.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 400 Bad Request\r\n\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nx: y\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            // No length, or not zero.
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\n\r\n",
            // Not a status line: body bytes that happen to look like one.
            b"HTTP/1.1 4xx Bad Request\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/2.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            b"{\"error\":\"bad_request\"}",
            b"",
        ] {
            assert!(
                codec_error_as_json(write).is_none(),
                "{}",
                String::from_utf8_lossy(write)
            );
        }
    }
}
