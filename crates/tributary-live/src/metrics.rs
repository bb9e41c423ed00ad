//! Prometheus metrics of the live plane, exposed by the binary at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Who reads a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rtmp,
    Flv,
    Hls,
    Push,
    Internal,
    /// WebRTC viewers (WHEP).
    Whep,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Flv => "flv",
            Protocol::Hls => "hls",
            Protocol::Push => "push",
            Protocol::Internal => "internal",
            Protocol::Whep => "whep",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Default)]
pub struct LiveMetrics {
    pub streams: Gauge,
    pub publishers: Gauge,
    pub players: Family<ProtocolLabel, Gauge>,
    pub bytes_in: Counter,
    pub bytes_out: Family<ProtocolLabel, Counter>,
    pub dropped_gops: Counter,
    pub refusals: Family<ReasonLabel, Counter>,
    pub connections: Counter,
    pub bad_connections: Counter,
}

impl LiveMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_live_streams",
            "Streams live in the hub",
            self.streams.clone(),
        );
        r.register(
            "tributary_live_publishers",
            "RTMP publishers connected and publishing",
            self.publishers.clone(),
        );
        r.register(
            "tributary_live_players",
            "Players by protocol",
            self.players.clone(),
        );
        r.register(
            "tributary_live_received_bytes",
            "Media bytes received from publishers",
            self.bytes_in.clone(),
        );
        r.register(
            "tributary_live_sent_bytes",
            "Media bytes sent to players, by protocol",
            self.bytes_out.clone(),
        );
        r.register(
            "tributary_live_dropped_gops",
            "Backlogs dropped because a player fell behind",
            self.dropped_gops.clone(),
        );
        r.register(
            "tributary_live_refusals",
            "Publish/play attempts refused, by reason",
            self.refusals.clone(),
        );
        r.register(
            "tributary_live_rtmp_connections",
            "RTMP connections accepted",
            self.connections.clone(),
        );
        r.register(
            "tributary_live_rtmp_protocol_errors",
            "RTMP connections closed for a protocol error",
            self.bad_connections.clone(),
        );
    }

    pub fn player(&self, protocol: Protocol) -> Gauge {
        self.players
            .get_or_create(&ProtocolLabel {
                protocol: protocol.name().to_string(),
            })
            .clone()
    }

    pub fn sent(&self, protocol: Protocol) -> Counter {
        self.bytes_out
            .get_or_create(&ProtocolLabel {
                protocol: protocol.name().to_string(),
            })
            .clone()
    }

    pub fn refused(&self, reason: &str) {
        self.refusals
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}
