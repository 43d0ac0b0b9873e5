//! After warm-up, processing a frame makes no heap allocation (counted by a global allocator
//! wrapper; the TFLite runtime's own C allocations are outside Rust's allocator and are not
//! counted — XNNPACK plans its memory at `allocate_tensors`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use maskgate::vision::image_io;
use maskgate::ImageView;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

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
    let before = ALLOCS.load(Ordering::SeqCst);
    let mut faces = 0;
    for _ in 0..5 {
        for f in frames {
            faces += p.process(f).unwrap().faces.len();
        }
    }
    let after = ALLOCS.load(Ordering::SeqCst);
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
    let e = p.detector.engine();
    for i in 0..e.outputs().len() {
        assert_eq!(e.output_ptr_now(i), e.output_ptr_cached(i));
    }
}
