//! Times each network through honnin's runtime on fixed inputs (a development aid:
//! `cargo run --release -p honnin-engine --example nettime`).
use std::time::Instant;

use honnin_engine::runtime::Network;

fn main() {
    let dir = honnin_engine::models::resolve_model_dir(None);
    for (file, shape) in [
        ("centerface.onnx", vec![1usize, 3, 128, 160]),
        ("centerface.onnx", vec![1, 3, 160, 160]),
        ("centerface.onnx", vec![1, 3, 192, 256]),
        ("mobilefacenet.onnx", vec![1, 3, 112, 112]),
        ("fr_feature.onnx", vec![1, 3, 112, 112]),
    ] {
        let net = Network::from_onnx(file, &std::fs::read(dir.join(file)).unwrap()).unwrap();
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 2654435761usize) % 256) as f32 / 128.0 - 1.0)
            .collect();
        for _ in 0..5 {
            net.run(&shape, data.clone()).unwrap();
        }
        let mut t: Vec<f64> = (0..30)
            .map(|_| {
                let s = Instant::now();
                net.run(&shape, data.clone()).unwrap();
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        println!(
            "{file} {shape:?}: median {:.2} ms, min {:.2} ms",
            t[15], t[0]
        );
    }
}
