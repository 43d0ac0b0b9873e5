//! Counters and latency histograms, printed in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    faces: BTreeMap<&'static str, u64>,
    verdicts: BTreeMap<&'static str, u64>,
    rejected_busy: u64,
}

#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    pub fn request(&self, endpoint: &'static str, status: u16, took: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests.entry((endpoint, status)).or_default() += 1;
        let h = m.latency.entry(endpoint).or_default();
        let s = took.as_secs_f64();
        for (c, &b) in h.counts.iter_mut().zip(BUCKETS.iter()) {
            if s <= b {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// A connection turned away with 503 because every worker and queue slot was taken.
    pub fn busy(&self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rejected_busy += 1;
    }

    /// A classified face ("mask" / "no_mask"), or "unclassified".
    pub fn face(&self, class: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .faces
            .entry(class)
            .or_default() += 1;
    }

    /// A kiosk verdict ("mask" / "no_mask" / "idle").
    pub fn verdict(&self, v: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .verdicts
            .entry(v)
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP maskgate_http_requests_total HTTP requests by endpoint and status."
        );
        let _ = writeln!(o, "# TYPE maskgate_http_requests_total counter");
        for ((e, s), n) in &m.requests {
            let _ = writeln!(
                o,
                "maskgate_http_requests_total{{endpoint=\"{e}\",code=\"{s}\"}} {n}"
            );
        }
        let _ = writeln!(o, "# HELP maskgate_http_rejected_busy_total Connections answered 503 (all workers and queue slots busy).");
        let _ = writeln!(o, "# TYPE maskgate_http_rejected_busy_total counter");
        let _ = writeln!(o, "maskgate_http_rejected_busy_total {}", m.rejected_busy);
        let _ = writeln!(o, "# HELP maskgate_http_request_duration_seconds Time from request read to response written.");
        let _ = writeln!(o, "# TYPE maskgate_http_request_duration_seconds histogram");
        for (e, h) in &m.latency {
            for (c, b) in h.counts.iter().zip(BUCKETS.iter()) {
                let _ = writeln!(o, "maskgate_http_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(
                o,
                "maskgate_http_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "maskgate_http_request_duration_seconds_sum{{endpoint=\"{e}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "maskgate_http_request_duration_seconds_count{{endpoint=\"{e}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            o,
            "# HELP maskgate_faces_total Faces found, by classifier verdict."
        );
        let _ = writeln!(o, "# TYPE maskgate_faces_total counter");
        for (c, n) in &m.faces {
            let _ = writeln!(o, "maskgate_faces_total{{class=\"{c}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP maskgate_verdicts_total Kiosk verdicts announced."
        );
        let _ = writeln!(o, "# TYPE maskgate_verdicts_total counter");
        for (v, n) in &m.verdicts {
            let _ = writeln!(o, "maskgate_verdicts_total{{verdict=\"{v}\"}} {n}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_with_cumulative_buckets() {
        let m = Metrics::default();
        m.request("detect", 200, Duration::from_millis(7));
        m.request("detect", 200, Duration::from_millis(30));
        m.request("detect", 415, Duration::from_micros(100));
        m.face("no_mask");
        m.verdict("mask");
        let t = m.render();
        assert!(t.contains("maskgate_http_requests_total{endpoint=\"detect\",code=\"200\"} 2\n"));
        assert!(t.contains("maskgate_http_requests_total{endpoint=\"detect\",code=\"415\"} 1\n"));
        assert!(t.contains("_bucket{endpoint=\"detect\",le=\"0.005\"} 1\n"));
        assert!(t.contains("_bucket{endpoint=\"detect\",le=\"0.01\"} 2\n"));
        assert!(t.contains("_bucket{endpoint=\"detect\",le=\"0.05\"} 3\n"));
        assert!(t.contains("_bucket{endpoint=\"detect\",le=\"+Inf\"} 3\n"));
        assert!(t.contains("maskgate_faces_total{class=\"no_mask\"} 1\n"));
        assert!(t.contains("maskgate_verdicts_total{verdict=\"mask\"} 1\n"));
    }
}
