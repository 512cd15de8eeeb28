//! The one place that talks to the inference runtime (tract).
//!
//! Everything else in the engine hands `f32` tensors in and gets `f32` tensors out
//! through [`Network`], so a second backend (ONNX Runtime, a GPU) is a drop-in
//! behind this module. A network is parsed once; an optimised plan is compiled per
//! input shape on first use and cached, so models load once and are shared by all
//! threads (plans are immutable and `Send + Sync`).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::error::{inference, EngineError, ModelError};

type Plan = Arc<TypedRunnableModel>;

/// A parsed ONNX network with a per-shape cache of optimised plans.
pub struct Network {
    name: String,
    model: InferenceModel,
    plans: Mutex<HashMap<Vec<usize>, Plan>>,
    max_cached_shapes: usize,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").field("name", &self.name).finish()
    }
}

/// An output tensor copied out of the runtime: shape and row-major data.
#[derive(Debug, Clone)]
pub struct Output {
    /// The tensor's dimensions, outermost first (e.g. `[1, 1, H/4, W/4]` for a heatmap).
    pub shape: Vec<usize>,
    /// The values in row-major order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl Network {
    /// Parses ONNX bytes (already checksum-verified by the caller).
    pub fn from_onnx(name: &str, bytes: &[u8]) -> Result<Self, ModelError> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(bytes))
            .map_err(|e| ModelError::Load {
                path: name.to_string(),
                reason: format!("{e:#}"),
            })?;
        Ok(Self {
            name: name.to_string(),
            model,
            plans: Mutex::new(HashMap::new()),
            max_cached_shapes: 32,
        })
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan, EngineError> {
        if let Some(p) = self.plans.lock().map_err(inference)?.get(shape) {
            return Ok(p.clone());
        }
        // Compile outside the lock: two threads may compile the same shape once each,
        // which is cheaper than serialising every first use behind one compile.
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                EngineError::Inference(format!("{}: compiling for {shape:?}: {e:#}", self.name))
            })?;
        let mut plans = self.plans.lock().map_err(inference)?;
        if plans.len() >= self.max_cached_shapes {
            plans.clear();
        }
        plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    /// Compiles the plan for `shape` ahead of time (start-up warm-up).
    pub fn prepare(&self, shape: &[usize]) -> Result<(), EngineError> {
        self.plan(shape).map(|_| ())
    }

    /// Runs the network on one input tensor of `shape` (row-major `data`).
    pub fn run(&self, shape: &[usize], data: Vec<f32>) -> Result<Vec<Output>, EngineError> {
        let plan = self.plan(shape)?;
        let input = Tensor::from_shape(shape, &data).map_err(inference)?;
        let outputs = plan
            .run(tvec!(input.into()))
            .map_err(|e| EngineError::Inference(format!("{}: {e:#}", self.name)))?;
        outputs
            .iter()
            .map(|t| {
                let view = t.to_plain_array_view::<f32>().map_err(inference)?;
                Ok(Output {
                    shape: view.shape().to_vec(),
                    data: view.iter().copied().collect(),
                })
            })
            .collect()
    }
}
