//! What the door loop counts, for Prometheus (`GET /metrics` on the kiosk's listener), with
//! prometheus-client: every metric is atomics (the histogram a short lock), so recording a frame
//! allocates nothing. The handles are cheap clones: the MQTT publisher and the display thread
//! update their own.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::verdict::Verdict;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

/// The kiosk's metrics, all under `maskgate_kiosk_` (MQTT's under `maskgate_kiosk_mqtt_`).
pub struct KioskMetrics {
    registry: Registry,
    pub frames: Counter,
    pub fps: Gauge<f64, AtomicU64>,
    /// Seconds from frame in hand to classified faces.
    pub inference: Histogram,
    /// The last frame's inference time, seconds (the status page).
    pub inference_last: Gauge<f64, AtomicU64>,
    pub faces: Histogram,
    pub camera_up: Gauge,
    pub camera_reopens: Counter,
    pub display_up: Gauge,
    /// Announced verdicts, one counter per decision (made at start: no allocation later).
    verdicts: [Counter; 3],
    pub mqtt_connected: Gauge,
    pub mqtt_dropped: Counter,
}

impl std::fmt::Debug for KioskMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KioskMetrics")
            .field("frames", &self.frames.get())
            .finish_non_exhaustive()
    }
}

impl Default for KioskMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("maskgate_kiosk");
        let frames = Counter::default();
        registry.register(
            "frames",
            "Frames processed by the door loop",
            frames.clone(),
        );
        let fps = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "fps",
            "Frames per second over the last status interval",
            fps.clone(),
        );
        let inference = Histogram::new(exponential_buckets(0.005, 2.0, 10));
        registry.register(
            "inference_seconds",
            "Detection and classification time per frame",
            inference.clone(),
        );
        let inference_last = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "inference_last_seconds",
            "Detection and classification time of the last frame",
            inference_last.clone(),
        );
        let faces = Histogram::new([0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0]);
        registry.register("faces_per_frame", "Faces found per frame", faces.clone());
        let camera_up = Gauge::default();
        registry.register(
            "camera_up",
            "1 while frames arrive, 0 while the camera is lost",
            camera_up.clone(),
        );
        let camera_reopens = Counter::default();
        registry.register(
            "camera_reopens",
            "Times a lost camera was opened again",
            camera_reopens.clone(),
        );
        let display_up = Gauge::default();
        registry.register(
            "display_up",
            "1 while the OLED acknowledges, 0 otherwise",
            display_up.clone(),
        );
        let family = Family::<DecisionLabel, Counter>::default();
        registry.register("verdicts", "Announced verdicts by decision", family.clone());
        let verdicts = [Verdict::Idle, Verdict::Mask, Verdict::NoMask].map(|v| {
            family
                .get_or_create(&DecisionLabel {
                    decision: v.as_str(),
                })
                .clone()
        });
        let mqtt_connected = Gauge::default();
        registry.register(
            "mqtt_connected",
            "1 while the MQTT broker has the connection",
            mqtt_connected.clone(),
        );
        let mqtt_dropped = Counter::default();
        registry.register(
            "mqtt_dropped",
            "Verdicts dropped because the broker was away longer than the queue",
            mqtt_dropped.clone(),
        );
        camera_up.set(1);
        Self {
            registry,
            frames,
            fps,
            inference,
            inference_last,
            faces,
            camera_up,
            camera_reopens,
            display_up,
            verdicts,
            mqtt_connected,
            mqtt_dropped,
        }
    }
}

impl KioskMetrics {
    pub fn verdict(&self, v: Verdict) {
        let i = match v {
            Verdict::Idle => 0,
            Verdict::Mask => 1,
            Verdict::NoMask => 2,
        };
        self.verdicts[i].inc();
    }

    /// Appends the Prometheus text exposition (without OpenMetrics' `# EOF`, so it can follow
    /// the HTTP service's own metrics in one response).
    pub fn encode(&self, out: &mut String) {
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let m = KioskMetrics::default();
        m.frames.inc();
        m.verdict(Verdict::NoMask);
        m.faces.observe(1.0);
        let mut s = String::new();
        m.encode(&mut s);
        for want in [
            "maskgate_kiosk_frames_total 1",
            "maskgate_kiosk_verdicts_total{decision=\"no_mask\"} 1",
            "maskgate_kiosk_verdicts_total{decision=\"mask\"} 0",
            "maskgate_kiosk_faces_per_frame_count 1",
            "maskgate_kiosk_camera_up 1",
            "maskgate_kiosk_mqtt_dropped_total 0",
        ] {
            assert!(s.contains(want), "{want} in\n{s}");
        }
        assert!(!s.contains("# EOF"));
    }
}
