//! The door loop end to end on scripted image sequences, with fake pins, a fake SSD1306
//! (its I2C stream decoded to pictures, compared with golden PNGs) and a simulated clock
//! at 15 fps: exact LED / buzzer timing, fresh verdicts per person, camera loss and a
//! NACKing display.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use maskgate::clock::{Clock, SimClock};
use maskgate::indicator::sim::{sim_oled, sim_signals, Bitmap, PanelProbe, SimPin, SimSsd1306};
use maskgate::indicator::{Output, Patterns};
use maskgate::kiosk::decide::Verdict;
use maskgate::kiosk::metrics::KioskMetrics;
use maskgate::kiosk::outputs::InlineOutputs;
use maskgate::kiosk::run::{Kiosk, LoopConfig, Summary};
use maskgate::kiosk::Event;
use maskgate::source::files::FileSource;
use maskgate::source::{FrameSource, RgbFrame, SourceError};

type Outs = InlineOutputs<SimPin, SimSsd1306>;

fn outputs(dump: Option<PathBuf>) -> (Outs, PanelProbe) {
    let (oled, probe) = sim_oled();
    let signals = sim_signals(Patterns::default());
    (
        InlineOutputs::new(signals, Some(oled), Some(probe.clone()), dump),
        probe,
    )
}

fn run(src: &mut dyn FrameSource, outs: Outs) -> (Vec<Event>, Summary, Outs) {
    let mut k = Kiosk::new(common::pipeline(640, 480), outs, LoopConfig::default());
    let mut events = vec![];
    let mut clock = SimClock::default();
    let s = k
        .run(src, &mut clock, &AtomicBool::new(false), &mut |e| {
            events.push(e)
        })
        .unwrap();
    (events, s, k.outputs)
}

fn decisions(ev: &[Event]) -> Vec<(u64, Verdict, u64)> {
    ev.iter()
        .filter_map(|e| match *e {
            Event::Decision {
                t_ms,
                decision,
                frame,
                ..
            } => Some((frame, decision, t_ms)),
            _ => None,
        })
        .collect()
}

fn leds(ev: &[Event]) -> Vec<(u64, &'static str, bool)> {
    ev.iter()
        .filter_map(|e| match *e {
            Event::Led { t_ms, led, on } => Some((t_ms, led, on)),
            _ => None,
        })
        .collect()
}

fn buzzer(ev: &[Event]) -> Vec<(u64, bool)> {
    ev.iter()
        .filter_map(|e| match *e {
            Event::Buzzer { t_ms, on } => Some((t_ms, on)),
            _ => None,
        })
        .collect()
}

fn all_outputs_off(o: &Outs) {
    for out in [Output::Green, Output::Red, Output::Buzzer] {
        assert!(!o.signals.pin(out).unwrap().is_high(), "{out:?} left on");
    }
}

/// Pictures dumped by the run, in order.
fn dumped(dir: &Path) -> Vec<image::GrayImage> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| image::open(f).unwrap().to_luma8())
        .collect()
}

#[test]
fn masked_person_nobody_then_unmasked_person() {
    let Some(shared) = common::shared() else {
        return;
    };
    let scene = |n: &str| {
        shared
            .join("data/face-mask-detection/images")
            .join(format!("maksssksksss{n}.jpg"))
    };
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let (m1, m2, m3) = (scene("446"), scene("592"), scene("506"));
    // 15 fps: nobody 8 frames, a masked person 15 (moving a little: three photos),
    // nobody 15 (1 s), an unmasked person 15, nobody 40
    let dir = common::sequence(
        "door",
        &[
            (&cat, 8),
            (&m1, 5),
            (&m2, 5),
            (&m3, 5),
            (&cat, 15),
            (&astro, 15),
            (&cat, 40),
        ],
    );
    let dump = common::scratch("door-dump");
    let (outs, _) = outputs(Some(dump.clone()));
    let mut src = FileSource::open(&dir, 15.0).unwrap();
    let (ev, sum, outs) = run(&mut src, outs);
    assert_eq!(sum.frames, 93);

    // third masked frame (frame 10) decides; the unmasked person, 1 s after the first left,
    // is judged afresh at its third frame (40) although the 2 s hold of "mask" ran until
    // frame 40; after they leave, idle once the hold (from frame 40) is over at frame 70
    assert_eq!(
        decisions(&ev),
        vec![
            (10, Verdict::Mask, 666),
            (40, Verdict::NoMask, 2666),
            (70, Verdict::Idle, 4666),
        ]
    );
    // a person in view gets a verdict well inside half a second (arrived at frame 8)
    let arrived_ms = 8 * 1000 / 15;
    assert!(decisions(&ev)[0].2 - arrived_ms <= 500);
    assert_eq!(
        leds(&ev),
        vec![
            (666, "green", true),
            (2666, "green", false),
            (2666, "red", true),
            (4666, "red", false),
        ]
    );
    assert_eq!(
        buzzer(&ev),
        vec![
            (666, true),
            (746, false), // 80 ms chirp
            (2666, true), // three 150 ms beeps, 100 ms apart
            (2816, false),
            (2916, true),
            (3066, false),
            (3166, true),
            (3316, false),
        ]
    );
    all_outputs_off(&outs);
    // what the OLED showed, in order: welcome, thank you, (fps line settles), please wear
    // a mask, welcome, out of service
    let pics = dumped(&dump);
    assert_eq!(pics.len(), 6);
    for (i, p) in pics.iter().enumerate() {
        common::check_golden(&format!("door_{i}.png"), p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dump);
}

#[test]
fn unmasked_person_then_nobody_without_shared_data() {
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("unmasked", &[(&cat, 5), (&astro, 10), (&cat, 40)]);
    let (outs, probe) = outputs(None);
    let mut src = FileSource::open(&dir, 15.0).unwrap();
    let (ev, _, outs) = run(&mut src, outs);
    // no mask at the third astronaut frame (7); idle 2 s later (frame 37)
    assert_eq!(
        decisions(&ev),
        vec![(7, Verdict::NoMask, 466), (37, Verdict::Idle, 2466)]
    );
    assert_eq!(leds(&ev), vec![(466, "red", true), (2466, "red", false)]);
    assert_eq!(buzzer(&ev).len(), 6);
    all_outputs_off(&outs);
    common::check_golden("out_of_service.png", &probe.picture().to_image(4));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_loop_counts_frames_faces_latency_and_verdicts_for_prometheus() {
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("metrics", &[(&cat, 5), (&astro, 10), (&cat, 40)]);
    let (outs, _probe) = outputs(None);
    let mut src = FileSource::open(&dir, 15.0).unwrap();
    let metrics = std::sync::Arc::new(KioskMetrics::default());
    let cfg = LoopConfig {
        metrics: metrics.clone(),
        ..LoopConfig::default()
    };
    let mut k = Kiosk::new(common::pipeline(640, 480), outs, cfg);
    let mut clock = SimClock::default();
    let s = k
        .run(&mut src, &mut clock, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    assert_eq!(s.frames, 55);
    let mut text = String::new();
    metrics.encode(&mut text);
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    assert_eq!(value("maskgate_kiosk_frames_total"), 55.0);
    assert_eq!(value("maskgate_kiosk_inference_seconds_count"), 55.0);
    assert_eq!(value("maskgate_kiosk_faces_per_frame_count"), 55.0);
    assert!(value("maskgate_kiosk_faces_per_frame_sum") >= 10.0); // the astronaut's frames
    assert_eq!(
        value("maskgate_kiosk_verdicts_total{decision=\"no_mask\"}"),
        1.0
    );
    assert_eq!(
        value("maskgate_kiosk_verdicts_total{decision=\"idle\"}"),
        1.0
    );
    assert_eq!(
        value("maskgate_kiosk_verdicts_total{decision=\"mask\"}"),
        0.0
    );
    assert_eq!(value("maskgate_kiosk_camera_up"), 1.0);
    assert_eq!(value("maskgate_kiosk_camera_reopens_total"), 0.0);
    // 15 fps on the simulated clock
    assert!((value("maskgate_kiosk_fps") - 15.0).abs() < 0.5, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A camera stand-in that fails at given frames and refuses `reopen` a number of times.
struct Flaky {
    inner: FileSource,
    frame: usize,
    fail_at: Vec<usize>,
    refuse_reopen: usize,
    /// Failed and not reopened yet: every read fails, like a vanished /dev/video0.
    broken: bool,
    reopen_calls: Vec<Duration>,
    now: Duration,
}

impl FrameSource for Flaky {
    fn next_frame(
        &mut self,
        clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        self.now = clock.now();
        if self.fail_at.first() == Some(&self.frame) {
            self.fail_at.remove(0);
            self.broken = true;
        }
        if self.broken {
            return Err(SourceError::Lost("USB camera unplugged".into()));
        }
        self.frame += 1;
        self.inner.next_frame(clock, out)
    }
    fn reopen(&mut self) -> Result<(), SourceError> {
        self.reopen_calls.push(self.now);
        if self.refuse_reopen > 0 {
            self.refuse_reopen -= 1;
            return Err(SourceError::Open("no such device".into()));
        }
        self.broken = false;
        self.inner.reopen()
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
}

#[test]
fn camera_lost_mid_stream_is_reopened_with_back_off() {
    let astro = common::sample("astronaut.jpg");
    let dir = common::sequence("flaky", &[(&astro, 20)]);
    let (outs, probe) = outputs(None);
    let mut src = Flaky {
        inner: FileSource::open(&dir, 15.0).unwrap(),
        frame: 0,
        fail_at: vec![5],
        refuse_reopen: 1,
        broken: false,
        reopen_calls: vec![],
        now: Duration::ZERO,
    };
    let metrics = std::sync::Arc::new(KioskMetrics::default());
    let cfg = LoopConfig {
        metrics: metrics.clone(),
        ..LoopConfig::default()
    };
    let mut k = Kiosk::new(common::pipeline(640, 480), outs, cfg);
    let mut ev = vec![];
    let mut offline_pic = None;
    let mut camera_up_while_offline = None;
    let mut clock = SimClock::default();
    let sum = k
        .run(&mut src, &mut clock, &AtomicBool::new(false), &mut |e| {
            if matches!(e, Event::Camera { online: false, .. }) {
                offline_pic = Some(probe.picture());
                camera_up_while_offline = Some(metrics.camera_up.get());
            }
            ev.push(e)
        })
        .unwrap();
    assert_eq!(sum.reopens, 1);
    assert_eq!(camera_up_while_offline, Some(0));
    assert_eq!(metrics.camera_up.get(), 1);
    assert_eq!(metrics.camera_reopens.get(), 1);
    assert_eq!(sum.frames, 20, "no frame is lost to the outage");
    // frames 0-4 at 0..266 ms, the failure when frame 5 is due (266 ms is the last frame
    // time on the clock), reopen refused after 0.5 s, accepted after another 1 s
    let cam: Vec<_> = ev
        .iter()
        .filter_map(|e| match *e {
            Event::Camera { t_ms, online } => Some((t_ms, online)),
            _ => None,
        })
        .collect();
    assert_eq!(cam, vec![(266, false), (1766, true)]);
    // unmasked verdict before the outage, LEDs off while blind, a fresh verdict after it
    let d = decisions(&ev);
    assert_eq!(d[0], (2, Verdict::NoMask, 133));
    assert_eq!(d[1].1, Verdict::NoMask);
    assert_eq!(d[1].0, 7, "third frame after reopening");
    assert!(leds(&ev).contains(&(266, "red", false)));
    let pic: Bitmap = offline_pic.expect("display updated when the camera went away");
    common::check_golden("camera_offline.png", &pic.to_image(4));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_nacking_display_does_not_stop_the_door() {
    let (cat, astro) = (
        common::sample("chelsea.png"),
        common::sample("astronaut.jpg"),
    );
    let dir = common::sequence("nack", &[(&cat, 2), (&astro, 5)]);
    let (outs, probe) = outputs(None);
    probe.set_nack(true);
    let mut src = FileSource::open(&dir, 15.0).unwrap();
    let (ev, sum, outs) = run(&mut src, outs);
    assert_eq!(sum.frames, 7);
    assert_eq!(decisions(&ev), vec![(4, Verdict::NoMask, 266)]);
    assert!(leds(&ev).contains(&(266, "red", true)));
    assert!(!ev.iter().any(|e| matches!(e, Event::Display { .. })));
    assert_eq!(probe.writes(), 0);
    assert!(!outs.oled.as_ref().unwrap().ok());
    let _ = std::fs::remove_dir_all(&dir);
}
