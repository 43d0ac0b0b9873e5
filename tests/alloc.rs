//! After warm-up, processing a frame makes no heap allocation (counted by a global allocator
//! wrapper; the TFLite runtime's own C allocations are outside Rust's allocator and are not
//! counted — XNNPACK plans its memory at `allocate_tensors`).
//!
//! The count is per thread: the paths measured here (pipeline, inline outputs, a memory
//! source) run wholly on the calling thread, while the test harness's own thread allocates
//! whenever a test ends (result bookkeeping, spawning the next test). A process-wide count
//! once caught that harness allocation in the middle of a measurement under emulation.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use maskgate::clock::{Clock, SimClock};
use maskgate::indicator::sim::{sim_oled, sim_signals};
use maskgate::indicator::Patterns;
use maskgate::kiosk::decide::DecideConfig;
use maskgate::kiosk::outputs::InlineOutputs;
use maskgate::kiosk::run::{Kiosk, LoopConfig};
use maskgate::kiosk::EventSink;
use maskgate::publish::mqtt::{MqttConfig, MqttSink};
use maskgate::serve::live::LiveView;
use maskgate::serve::{DoorInfo, DoorLink, Shared};
use maskgate::source::{FrameSource, RgbFrame, SourceError};
use std::sync::Arc;

use maskgate::vision::image_io;
use maskgate::ImageView;

struct Counting;

thread_local! {
    // const-initialised and without a destructor: reading it never allocates or registers
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

/// Allocations made so far by the calling thread.
fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Guards the guard: a counter that always read 0 would pass every test below.
#[test]
fn the_counter_sees_this_threads_allocations_and_only_those() {
    let before = allocs();
    let v: Vec<u64> = Vec::with_capacity(16);
    std::hint::black_box(&v);
    assert_eq!(allocs() - before, 1);
    // spawning allocates here (handle, name) the same either way; what the other thread
    // allocates is its own
    let spawn_and_alloc = |n: usize| {
        let before = allocs();
        std::thread::spawn(move || {
            (0..n)
                .map(|i| std::hint::black_box(vec![i; 8]).len())
                .sum::<usize>()
        })
        .join()
        .unwrap();
        allocs() - before
    };
    assert_eq!(spawn_and_alloc(0), spawn_and_alloc(1000));
}

#[test]
fn processing_frames_after_warm_up_allocates_nothing() {
    let mut p = common::pipeline(640, 480);
    let astro = image_io::load(&common::sample("astronaut.jpg")).unwrap();
    let cam = image_io::load(&common::sample("camera.png")).unwrap();
    let frames = [ImageView::from_rgb(&astro), ImageView::from_rgb(&cam)];
    // warm-up: first frames may size internal tables
    for f in frames {
        p.process(f).unwrap();
    }
    let before = allocs();
    let mut faces = 0;
    for _ in 0..5 {
        for f in frames {
            faces += p.process(f).unwrap().faces.len();
        }
    }
    let after = allocs();
    assert!(
        faces >= 10,
        "the frames have faces, so the classifier path ran too"
    );
    assert_eq!(
        after - before,
        0,
        "heap allocations during 10 frames after warm-up"
    );
}

#[test]
fn cached_tensor_buffers_stay_valid_across_invokes() {
    let mut p = common::pipeline(320, 240);
    let astro = image_io::load(&common::sample("astronaut.jpg")).unwrap();
    for _ in 0..3 {
        p.process(ImageView::from_rgb(&astro)).unwrap();
    }
    // the engine checks once after its first invoke; after more frames they must still hold
    p.detector.engine().check_buffers().unwrap();
    p.classifier.engine().check_buffers().unwrap();
}

/// Decoded frames played from memory in a fixed pattern at 15 fps; it reads the allocation
/// counter when frame `mark` is handed out and when the pattern is exhausted, so the count
/// covers everything the loop does in between: detect, classify, decide, LEDs, buzzer,
/// display rendering and the I2C stream.
struct Memory {
    frames: Vec<RgbFrame>,
    pattern: Vec<usize>,
    next: usize,
    mark: usize,
    counts: (usize, usize),
}

impl FrameSource for Memory {
    fn next_frame(
        &mut self,
        clock: &mut dyn Clock,
        out: &mut RgbFrame,
    ) -> Result<bool, SourceError> {
        if self.next == self.mark {
            self.counts.0 = allocs();
        }
        let Some(&i) = self.pattern.get(self.next) else {
            self.counts.1 = allocs();
            return Ok(false);
        };
        let t = clock.now() + Duration::from_nanos(66_666_667);
        clock.sleep_until(t);
        let f = &self.frames[i];
        out.set_size(f.width, f.height);
        out.data.copy_from_slice(&f.data);
        self.next += 1;
        Ok(true)
    }
    fn reopen(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

#[test]
fn the_door_loop_allocates_nothing_per_frame_after_warm_up() {
    let load = |n: &str| {
        let img = image_io::load(&common::sample(n)).unwrap();
        let mut f = RgbFrame::default();
        f.set_size(img.width(), img.height());
        f.data.copy_from_slice(img.as_raw());
        f
    };
    // different sizes (451x300, 512x512): the frame buffer keeps its largest capacity
    let frames = vec![load("chelsea.png"), load("astronaut.jpg")];
    // the live view is watched all along: the loop copies a frame into it a few times a
    // second (its slot warmed once at the largest size), a viewer encodes them on its thread
    let live = Arc::new(LiveView::new(40.0));
    live.want();
    live.offer(&frames[1], &[]);
    // person for 8 frames, nobody for 8: short hold so verdicts keep changing
    // (fewer frames under emulation, where a 640x480 frame takes ~1 s)
    let emulated = std::env::var("MASKGATE_TEST_RUNNER").is_ok_and(|r| !r.is_empty());
    let n = if emulated { 96 } else { 160 };
    let pattern: Vec<usize> = (0..n).map(|i| (i / 8) % 2).collect();
    let mut src = Memory {
        frames,
        pattern,
        next: 0,
        mark: 40,
        counts: (0, 0),
    };
    let signals = sim_signals(Patterns::default());
    let (oled, _probe) = sim_oled();
    let outs = InlineOutputs::new(signals, Some(oled), None, None);
    let cfg = LoopConfig {
        decide: DecideConfig {
            hold: Duration::from_millis(200),
            absent: Duration::from_millis(200),
            ..DecideConfig::default()
        },
        status_interval: Duration::from_millis(500),
        live: Some(live.clone()),
        ..LoopConfig::default()
    };
    let mut k = Kiosk::new(common::pipeline(640, 480), outs, cfg);
    let watching = Arc::new(AtomicBool::new(true));
    let viewer = {
        let (live, watching) = (live.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut newest = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((seq, _)) = live.jpeg(Duration::from_secs(5)) {
                    newest = newest.max(seq);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            newest
        })
    };
    // the status page's side gets every event too (its recent-verdicts list is made full size)
    let mut page = Shared::for_door(DoorLink {
        info: DoorInfo::default(),
        metrics: Arc::default(),
        live: Some(live.clone()),
        selftest: Arc::default(),
    });
    // an MQTT publisher gets every event too (its broker port is closed: the verdicts queue
    // and drop, the way they do while a site's broker is away)
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", dead.local_addr().unwrap());
    drop(dead);
    let mqtt_cfg = MqttConfig {
        url,
        queue: 8,
        ..MqttConfig::default()
    };
    let mut mqtt = MqttSink::start(&mqtt_cfg, "alloc-test").unwrap();
    let mut verdicts_after_mark = 0;
    let mut frame_seen = 0u64;
    let sum = k
        .run(
            &mut src,
            &mut SimClock::default(),
            &AtomicBool::new(false),
            &mut |e| {
                mqtt.event(&e);
                page.event(&e);
                if let maskgate::kiosk::Event::Decision { frame, .. } = e {
                    frame_seen = frame;
                    if frame >= 40 {
                        verdicts_after_mark += 1;
                    }
                }
            },
        )
        .unwrap();
    assert_eq!(sum.frames, n as u64);
    assert!(frame_seen > 40);
    assert!(
        verdicts_after_mark >= (n - 40) / 16,
        "verdicts, LEDs, buzzer and screens changed during the counted frames ({verdicts_after_mark})"
    );
    assert!(mqtt.dropped() > 0, "the MQTT queue saw the verdicts");
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let copies = viewer.join().unwrap();
    assert!(
        copies >= 3,
        "the live view got frames during the run ({copies})"
    );
    let (before, after) = src.counts;
    assert_eq!(
        after - before,
        0,
        "heap allocations in {} loop frames after warm-up",
        n - 40
    );
}

#[test]
fn nms_over_many_candidates_sorts_in_place() {
    use maskgate::vision::decode::nms;
    use maskgate::{BBox, Detection};
    // 300 overlapping candidates around one face: a stable sort would need heap scratch
    let mut cands: heapless::Vec<Detection, 1024> = heapless::Vec::new();
    for i in 0..300 {
        let o = (i % 17) as f32;
        let _ = cands.push(Detection {
            bbox: BBox {
                x1: 100.0 + o,
                y1: 80.0 + o,
                x2: 200.0 + o,
                y2: 190.0 + o,
            },
            score: 0.7 + (i % 29) as f32 / 100.0,
            landmarks: [[0.0; 2]; 5],
        });
    }
    let mut out: heapless::Vec<Detection, 64> = heapless::Vec::new();
    let before = allocs();
    nms(&mut cands, 0.4, &mut out);
    assert_eq!(allocs() - before, 0);
    assert_eq!(out.len(), 1);
    assert!((out[0].score - 0.98).abs() < 1e-6);
}
