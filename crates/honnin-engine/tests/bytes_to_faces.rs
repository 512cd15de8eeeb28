//! Property test: any byte string fed through decode → detect → templates returns
//! `Ok` or a typed error, never panics. Inputs are arbitrary bytes and mutations
//! (bit flips, truncation, splices, header corruption) of valid encodings of a face.
//! The long-running coverage-guided version of this is `fuzz/` (see its README).

use std::sync::OnceLock;

use honnin_engine::{DetectOptions, Engine, EngineConfig};
use proptest::prelude::*;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(EngineConfig::default()).expect("engine"))
}

/// Small valid encodings of a real face (downscaled so each case stays fast).
fn seeds() -> &'static Vec<Vec<u8>> {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/obama.jpg");
        let img = image::open(p).expect("fixture").to_rgb8();
        let small = image::imageops::resize(&img, 120, 150, image::imageops::FilterType::Triangle);
        [
            image::ImageFormat::Jpeg,
            image::ImageFormat::Png,
            image::ImageFormat::Bmp,
            image::ImageFormat::WebP,
        ]
        .iter()
        .map(|f| {
            let mut out = std::io::Cursor::new(Vec::new());
            small.write_to(&mut out, *f).expect("encode");
            out.into_inner()
        })
        .collect()
    })
}

/// Runs the whole pipeline; any panic fails the property.
fn pipeline(bytes: &[u8]) {
    let e = engine();
    if let Ok(img) = e.decode(bytes) {
        if let Ok(faces) = e.detect(&img, &DetectOptions::default()) {
            let _ = e.templates(&img, &faces);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, Vec<u8>),
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, bit) => {
                let i = i % b.len();
                b[i] ^= 1 << (bit % 8);
            }
            Mutation::Truncate(i) => {
                let i = i % b.len();
                b.truncate(i);
            }
            Mutation::Insert(i, data) => {
                let i = i % b.len();
                b.splice(i..i, data.iter().copied());
            }
            Mutation::Overwrite(i, data) => {
                // Bias toward the header, where lengths and dimensions live.
                let i = i % b.len().min(64);
                for (k, v) in data.iter().enumerate() {
                    if let Some(x) = b.get_mut(i + k) {
                        *x = *v;
                    }
                }
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, d)| Mutation::Insert(i, d)),
        (
            any::<usize>(),
            prop::collection::vec(prop_oneof![Just(0u8), Just(0xFF), any::<u8>()], 1..8)
        )
            .prop_map(|(i, d)| Mutation::Overwrite(i, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        pipeline(&bytes);
    }

    #[test]
    fn mutated_images_never_panic(seed in 0usize..4, muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(seeds()[seed].clone(), &muts);
        pipeline(&bytes);
    }
}
