//! Connection metrics of every listener, labelled by listener name: accepted, refused
//! (cap reached with no connection to evict), evicted (to make room), closed by a timeout
//! (by reason), failed TLS handshakes, and connections open now.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabels {
    pub listener: String,
    /// `header`, `handshake`, `idle`, `stalled_response`, `body_rate` or `request`.
    pub reason: String,
}

/// Why the server gave up on a connection or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    Header,
    Handshake,
    Idle,
    StalledResponse,
    BodyRate,
    Request,
}

impl Timeout {
    fn label(self) -> &'static str {
        match self {
            Timeout::Header => "header",
            Timeout::Handshake => "handshake",
            Timeout::Idle => "idle",
            Timeout::StalledResponse => "stalled_response",
            Timeout::BodyRate => "body_rate",
            Timeout::Request => "request",
        }
    }
}

/// The listeners' metrics; clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct NetMetrics {
    pub accepted: Family<ListenerLabels, Counter>,
    pub refused: Family<ListenerLabels, Counter>,
    pub evicted: Family<ListenerLabels, Counter>,
    pub timeouts: Family<TimeoutLabels, Counter>,
    pub tls_failures: Family<ListenerLabels, Counter>,
    pub open: Family<ListenerLabels, Gauge>,
}

impl NetMetrics {
    /// The process-wide set every [`crate::Listener`] counts into unless given another.
    pub fn global() -> NetMetrics {
        static GLOBAL: OnceLock<NetMetrics> = OnceLock::new();
        GLOBAL.get_or_init(NetMetrics::default).clone()
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_net");
        r.register(
            "connections_accepted",
            "Connections accepted, by listener",
            self.accepted.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once because the listener was at its cap with no idle connection to evict",
            self.refused.clone(),
        );
        r.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one at the cap",
            self.evicted.clone(),
        );
        r.register(
            "timeouts",
            "Connections (or, for body_rate and request, requests) the server gave up on, by reason",
            self.timeouts.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed",
            self.tls_failures.clone(),
        );
        r.register(
            "connections_open",
            "Connections open now, by listener",
            self.open.clone(),
        );
    }

    fn labels(listener: &str) -> ListenerLabels {
        ListenerLabels {
            listener: listener.to_string(),
        }
    }

    pub(crate) fn accepted(&self, listener: &str) {
        self.accepted.get_or_create(&Self::labels(listener)).inc();
    }

    pub(crate) fn refused(&self, listener: &str) {
        self.refused.get_or_create(&Self::labels(listener)).inc();
    }

    pub(crate) fn evicted(&self, listener: &str) {
        self.evicted.get_or_create(&Self::labels(listener)).inc();
    }

    pub(crate) fn tls_failed(&self, listener: &str) {
        self.tls_failures
            .get_or_create(&Self::labels(listener))
            .inc();
    }

    pub(crate) fn timed_out(&self, listener: &str, why: Timeout) {
        self.timeouts
            .get_or_create(&TimeoutLabels {
                listener: listener.to_string(),
                reason: why.label().to_string(),
            })
            .inc();
    }

    pub(crate) fn opened(&self, listener: &str) {
        self.open.get_or_create(&Self::labels(listener)).inc();
    }

    pub(crate) fn closed(&self, listener: &str) {
        self.open.get_or_create(&Self::labels(listener)).dec();
    }

    /// The value of a counter family member, for tests and the admin API.
    pub fn timeouts_of(&self, listener: &str, reason: &str) -> u64 {
        self.timeouts
            .get_or_create(&TimeoutLabels {
                listener: listener.to_string(),
                reason: reason.to_string(),
            })
            .get()
    }
}
