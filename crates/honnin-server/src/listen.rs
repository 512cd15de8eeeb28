//! Accepting connections: what `axum::serve` does, plus the limits a server on a public
//! address needs against slow or greedy clients.
//!
//! * **Header read timeout** (`limits.header_read_timeout_secs`, 10 s): a connection
//!   that has not sent a complete request head within it (a new connection, or an idle
//!   keep-alive one) is closed. Without it, a client that sends headers a byte at a time
//!   ("slowloris") holds a connection — and a file descriptor — forever.
//! * **Connections per client** (`limits.max_connections_per_client`, 256): a client
//!   address (IPv6: its /64) past it has its new connections closed at once.
//! * **Connections in all** (`limits.max_connections`, 4096; keep it below the
//!   process's open-file limit): past it, new connections are closed at once, so the
//!   server never runs out of descriptors for its database and its own work.
//!
//! Every request carries the peer address (`ConnectInfo<SocketAddr>`) for the
//! failed-authentication limit. HTTP/1.1 with upgrades (the liveness WebSocket) and
//! HTTP/2 are served; shutdown is graceful (in-flight requests finish).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::extract::budget_key;

/// Connection limits (from `limits.*`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A connection without a complete request head within this time is closed
    /// (`limits.header_read_timeout_secs`, default 10 s).
    pub header_read_timeout: Duration,
    /// Open connections in all; past it new ones are closed at once
    /// (`limits.max_connections`, default 4096).
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64); past it that client's new
    /// ones are closed at once (`limits.max_connections_per_client`, default 256).
    pub max_connections_per_client: usize,
}

/// Open connections, in all and per client; a slot is released when its guard drops.
#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

struct Slot {
    open: Arc<parking_lot::Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock();
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                o.per_client.remove(&self.client);
            }
        }
        metrics::gauge!("honnin_connections_open").set(o.total as f64);
    }
}

/// A slot for a new connection from `client`, or why not.
fn admit(
    open: &Arc<parking_lot::Mutex<Open>>,
    limits: &ConnectionLimits,
    client: IpAddr,
) -> Result<Slot, &'static str> {
    let mut o = open.lock();
    if o.total >= limits.max_connections {
        return Err("max_connections");
    }
    let mine = o.per_client.get(&client).copied().unwrap_or(0);
    if mine >= limits.max_connections_per_client {
        return Err("max_connections_per_client");
    }
    o.total += 1;
    *o.per_client.entry(client).or_default() += 1;
    metrics::gauge!("honnin_connections_open").set(o.total as f64);
    Ok(Slot {
        open: open.clone(),
        client,
    })
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(parking_lot::Mutex::new(Open::default()));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // The CONNECT protocol carries WebSockets over HTTP/2.
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before accept: wait a
                    // moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let slot = match admit(&open, &limits, budget_key(peer.ip())) {
            Ok(s) => s,
            Err(why) => {
                metrics::counter!("honnin_connections_refused_total", "why" => why).increment(1);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            },
        );
        let hyper_svc = TowerToHyperService::new(svc);
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_svc);
            let mut conn = std::pin::pin!(conn);
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
        });
    }
    drop(listener);
    // Ask every connection to finish its in-flight requests and close, then wait for
    // them (each holds a slot until its task ends).
    let _ = stop_tx.send(());
    while open.lock().total > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
