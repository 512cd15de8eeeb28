//! A liveness frame is checked against the session's announced video size from its
//! JPEG header, before a pixel is decoded (issue 12, item 10).
//!
//! A small JPEG can claim 40 megapixels in its header; decoders then allocate the whole
//! image (120 MB of RGB) and fill it with whatever the short data yields. The frame
//! here is 640×480 of data with a header claiming 8000×5000. The proof that nothing
//! was decoded is memory: this test binary's allocator records the largest single
//! allocation made on the test's thread while the frame is handled, and it must stay
//! far below the 120 MB a decode would ask for (measured before the fix: the decode
//! succeeded, allocating 8000×5000×3 bytes, in 262 ms).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use honnin_liveness::protocol::{codes, encode_frame};
use honnin_liveness::simulator::encode_jpeg;
use honnin_liveness::{LiveSession, ServerMessage, SessionSettings};

/// Records the largest allocation request of the current thread.
struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: never panic inside the allocator (thread teardown).
    let _ = LARGEST.try_with(|m| {
        if size > m.get() {
            m.set(size);
        }
    });
}

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// A JPEG whose frame header (SOF0) claims `w`×`h` while its data is a 640×480 image's.
fn claiming(w: u16, h: u16) -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([
            (x % 256) as u8,
            ((y * 2) % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut j = encode_jpeg(&img, 85).unwrap();
    let sof = j
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("a baseline JPEG");
    j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    j
}

#[test]
fn a_frame_claiming_a_huge_size_is_refused_before_decoding() {
    let t0 = Instant::now();
    let mut s = LiveSession::new(common::analyzers(), SessionSettings::default(), 42);
    let out = s
        .on_text(
            t0,
            r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"test","version":"1"}}"#,
        )
        .unwrap();
    assert!(matches!(out.as_slice(), [ServerMessage::Challenge { .. }]));
    let frame = encode_frame(1.0, &claiming(8000, 5000));
    assert!(frame.len() < 512 * 1024, "within the frame byte limit");
    LARGEST.with(|m| m.set(0));
    let e = s.on_frame(t0, &frame).unwrap_err();
    let largest = LARGEST.with(|m| m.get());
    assert_eq!(e.code, codes::INVALID_FRAME);
    assert!(e.message.contains("8000x5000"), "{e}");
    assert!(
        largest < 16 << 20,
        "{largest} bytes allocated at once: the frame was decoded (8000×5000×3 = 120 MB)"
    );
    eprintln!("largest allocation while refusing the frame: {largest} bytes");
}
