//! The webhook delivery client and loop.
//!
//! The HTTP client resolves names through [`EgressResolver`], which hands reqwest only
//! the addresses the egress policy allows ([`honnin_core::egress`]): the connection goes
//! to an address that was checked, with no second lookup to rebind. Literal IP hosts
//! (which reqwest does not resolve) are checked before the request. Redirects are off,
//! proxies are off, and connecting is bounded by `connect_timeout_ms` separately from
//! the whole attempt (`timeout_ms`), so a black-hole receiver holds a delivery slot for
//! seconds, not minutes.
//!
//! The loop ([`spawn`]) runs on its own task, apart from verification decisions: one
//! slow receiver never delays a decision, and the dispatcher's global and per-owner
//! caps keep one key's receivers from taking every slot.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use honnin_core::egress::EgressPolicy;
use honnin_core::webhooks::{Dispatcher, SendFailure, SendResult, SignedRequest};
use honnin_core::Service;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The resolver error for a name none of whose addresses the policy allows.
#[derive(Debug)]
struct NotAllowed;

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("destination not allowed by the webhook egress policy, or it does not resolve")
    }
}

impl StdError for NotAllowed {}

/// Resolves names and keeps only the addresses the egress policy allows.
#[derive(Debug, Clone)]
pub struct EgressResolver {
    policy: EgressPolicy,
}

impl Resolve for EgressResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            if !policy.resolves_names() {
                return Err(Box::new(NotAllowed) as Box<dyn StdError + Send + Sync>);
            }
            // A name that does not resolve is reported like one that resolves only to
            // refused addresses: the delivery log must not tell internal names that
            // exist from names that do not.
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|_| Box::new(NotAllowed) as Box<dyn StdError + Send + Sync>)?;
            let allowed: Vec<SocketAddr> = found
                .filter(|a| policy.check_addr(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(NotAllowed) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The webhook HTTP client for `svc`'s configuration and egress policy.
pub fn client(svc: &Service) -> reqwest::Result<reqwest::Client> {
    client_for(&svc.config().webhooks, svc.egress())
}

/// The webhook HTTP client for a configuration and an egress policy.
pub fn client_for(
    cfg: &honnin_core::webhooks::WebhookConfig,
    policy: &EgressPolicy,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms.max(100)))
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(100)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(EgressResolver {
            policy: policy.clone(),
        }))
        .user_agent(concat!("honnin-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn is_not_allowed(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = cur {
        if s.is::<NotAllowed>() {
            return true;
        }
        cur = s.source();
    }
    false
}

/// Sends one signed delivery, applying the egress policy to literal addresses (names
/// go through [`EgressResolver`]).
pub async fn send(client: reqwest::Client, policy: EgressPolicy, r: SignedRequest) -> SendResult {
    let url = reqwest::Url::parse(&r.url).map_err(|_| SendFailure::NoResponse)?;
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal {
        if policy.check_addr(ip).is_err() {
            return Err(SendFailure::NotAllowed);
        }
    }
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && policy.allow_http);
    if !scheme_ok {
        return Err(SendFailure::NotAllowed);
    }
    client
        .post(url)
        .header("content-type", "application/json")
        .header("honnin-signature", &r.signature)
        .header("honnin-event", &r.event)
        .header("honnin-delivery", &r.delivery_id)
        .body(r.body)
        .send()
        .await
        .map(|res| res.status().as_u16())
        .map_err(|e| {
            if is_not_allowed(&e) {
                SendFailure::NotAllowed
            } else {
                SendFailure::NoResponse
            }
        })
}

/// Starts the delivery loop: every `every`, one dispatch round.
pub fn spawn(svc: Arc<Service>, every: Duration) {
    tokio::spawn(async move {
        let client = match client(&svc) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
                return;
            }
        };
        let policy = svc.egress().clone();
        let dispatcher = Dispatcher::new(&svc.config().webhooks);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (client, policy) = (client.clone(), policy.clone());
            let sender = move |r: SignedRequest| send(client.clone(), policy.clone(), r);
            if let Err(e) = svc.webhooks().dispatch_webhooks(&dispatcher, sender).await {
                tracing::warn!(error = %e, "webhook dispatch round failed; retrying");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn policy(allow_public: bool, nets: &[&str]) -> EgressPolicy {
        let nets: Vec<String> = nets.iter().map(|s| s.to_string()).collect();
        EgressPolicy::new(true, allow_public, &nets).unwrap()
    }

    /// A name is judged by what it resolves to, at delivery time: `localhost` (any name
    /// that resolves to an internal address) is refused unless allow-listed. With no
    /// public destinations and no allow-list, nothing is even resolved.
    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let name = || Name::from_str("localhost").unwrap();
        let refused = EgressResolver {
            policy: policy(true, &[]),
        }
        .resolve(name())
        .await;
        assert!(refused.is_err());
        let allowed = EgressResolver {
            policy: policy(false, &["127.0.0.0/8", "::1/128"]),
        }
        .resolve(name())
        .await
        .map_err(|e| e.to_string())
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
        let closed = EgressResolver {
            policy: policy(false, &[]),
        }
        .resolve(name())
        .await;
        assert!(closed.is_err());
    }

    /// The same receiver URL is delivered to with the allow-list and refused without it,
    /// whether the host is a name or a literal address.
    #[tokio::test]
    async fn the_same_url_is_refused_without_the_allow_list() {
        let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await.ok() });
        let cfg = honnin_core::webhooks::WebhookConfig::default();
        for host in ["localhost", "127.0.0.1"] {
            let req = SignedRequest {
                url: format!("http://{host}:{port}/hook"),
                body: "{}".into(),
                signature: "t=0,v1=00".into(),
                event: "verification.completed".into(),
                delivery_id: "d".into(),
            };
            let strict = policy(true, &[]);
            let c = client_for(&cfg, &strict).unwrap();
            assert_eq!(
                send(c, strict, req.clone()).await,
                Err(SendFailure::NotAllowed),
                "{host}"
            );
            let open = policy(false, &["127.0.0.0/8"]);
            let c = client_for(&cfg, &open).unwrap();
            assert_eq!(send(c, open, req).await, Ok(200), "{host}");
        }
    }
}
