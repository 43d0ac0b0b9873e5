//! The HTTP service's own metrics (requests by endpoint and status, latency, 503s, faces
//! classified in uploads), with prometheus-client like the kiosk's; `GET /metrics` prints
//! these and then, under `maskgate run`, the door loop's (`maskgate_kiosk_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Latency bucket upper bounds, seconds.
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct HttpMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    rejected_busy: Counter,
    faces: Family<ClassLabel, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "maskgate_http_requests",
            "HTTP requests by endpoint and status",
            requests.clone(),
        );
        let duration = Family::<EndpointLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency as fn() -> Histogram,
        );
        registry.register(
            "maskgate_http_request_duration_seconds",
            "Time from request headers read to response ready",
            duration.clone(),
        );
        let rejected_busy = Counter::default();
        registry.register(
            "maskgate_http_rejected_busy",
            "Requests answered 503 because every inference worker and queue slot was taken",
            rejected_busy.clone(),
        );
        let faces = Family::<ClassLabel, Counter>::default();
        registry.register(
            "maskgate_faces",
            "Faces found in uploads, by classifier verdict",
            faces.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            rejected_busy,
            faces,
        }
    }
}

impl HttpMetrics {
    pub fn request(&self, endpoint: &'static str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
        self.duration
            .get_or_create(&EndpointLabel { endpoint })
            .observe(took.as_secs_f64());
    }

    /// A request turned away with 503: every inference worker and queue slot was taken.
    pub fn busy(&self) {
        self.rejected_busy.inc();
    }

    /// A classified face ("mask" / "no_mask"), or "unclassified".
    pub fn face(&self, class: &'static str) {
        self.faces.get_or_create(&ClassLabel { class }).inc();
    }

    /// The Prometheus text exposition, without OpenMetrics' closing `# EOF` (the kiosk's
    /// metrics may follow).
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut o, &self.registry);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_with_cumulative_buckets() {
        let m = HttpMetrics::default();
        m.request("detect", 200, Duration::from_millis(7));
        m.request("detect", 200, Duration::from_millis(30));
        m.request("detect", 415, Duration::from_micros(100));
        m.face("no_mask");
        m.busy();
        let t = m.render();
        for want in [
            "maskgate_http_requests_total{endpoint=\"detect\",code=\"200\"} 2\n",
            "maskgate_http_requests_total{endpoint=\"detect\",code=\"415\"} 1\n",
            "_bucket{le=\"0.005\",endpoint=\"detect\"} 1\n",
            "_bucket{le=\"0.01\",endpoint=\"detect\"} 2\n",
            "_bucket{le=\"0.05\",endpoint=\"detect\"} 3\n",
            "_bucket{le=\"+Inf\",endpoint=\"detect\"} 3\n",
            "maskgate_http_request_duration_seconds_count{endpoint=\"detect\"} 3\n",
            "maskgate_faces_total{class=\"no_mask\"} 1\n",
            "maskgate_http_rejected_busy_total 1\n",
        ] {
            assert!(t.contains(want), "{want:?} in\n{t}");
        }
        assert!(!t.contains("# EOF"));
    }
}
