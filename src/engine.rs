//! Thin owner of a TFLite interpreter (tflitec, XNNPACK delegate): loads a model file with clear
//! errors, records every tensor's shape / type / quantization, and exposes the input and output
//! buffers as slices so the per-frame path never goes through tflitec's allocating accessors.

use std::path::{Path, PathBuf};

use tflitec::interpreter::{Interpreter, Options};
use tflitec::model::Model;
use tflitec::tensor::DataType;

use crate::bounded_read;
use crate::quant::{OutputView, QParams};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model {path}: cannot read the file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model {path}: not a valid TFLite flatbuffer (wrong or corrupt file?)")]
    Invalid { path: PathBuf },
    #[error("model {path}: the TFLite runtime could not prepare it: {msg}")]
    Runtime { path: PathBuf, msg: String },
    #[error("model {path}: {msg}")]
    Mismatch { path: PathBuf, msg: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    Int8,
    UInt8,
    Float32,
    Other,
}

/// What a tensor looks like, read once from the model.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: Option<QParams>,
}

struct Buf {
    ptr: *mut u8,
    len: usize,
}

/// A loaded model with its interpreter. `interpreter` is declared first so it drops before the
/// model it borrows.
pub struct Engine {
    interpreter: Interpreter<'static>,
    _model: Box<Model<'static>>,
    _bytes: Box<[u8]>,
    path: PathBuf,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    in_bufs: Vec<Buf>,
    out_bufs: Vec<Buf>,
    /// The first invoke re-checks the cached buffers ([`Engine::check_buffers`]).
    checked: bool,
}

// SAFETY: the interpreter is used from one thread at a time (`&mut self` for invoke and input
// writes); TFLite interpreters may move between threads.
unsafe impl Send for Engine {}

fn dtype(d: DataType) -> DType {
    match d {
        DataType::Int8 => DType::Int8,
        DataType::UInt8 => DType::UInt8,
        DataType::Float32 => DType::Float32,
        _ => DType::Other,
    }
}

impl Engine {
    /// Loads `path` and prepares an interpreter with `threads` threads and XNNPACK.
    pub fn load(path: &Path, threads: usize) -> Result<Self, EngineError> {
        let bytes: Box<[u8]> = bounded_read::read(path, bounded_read::MODEL_LIMIT)
            .map_err(|source| EngineError::Read {
                path: path.into(),
                source,
            })?
            .into_boxed_slice();
        // TfLiteModelCreate verifies the flatbuffer; a text file or truncated model is refused.
        if bytes.len() < 8 || &bytes[4..8] != b"TFL3" {
            return Err(EngineError::Invalid { path: path.into() });
        }
        // SAFETY: `bytes` is boxed (stable address) and outlives the model: both live in `Self`,
        // and the model drops first (field order).
        let static_bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        let model = Box::new(
            Model::from_bytes(static_bytes)
                .map_err(|_| EngineError::Invalid { path: path.into() })?,
        );
        let model_ref: &'static Model<'static> =
            unsafe { &*(model.as_ref() as *const Model<'static>) };
        let opts = Options {
            thread_count: threads.max(1) as i32,
            is_xnnpack_enabled: true,
        };
        let rt = |e: tflitec::Error| EngineError::Runtime {
            path: path.into(),
            msg: e.to_string(),
        };
        let interpreter = Interpreter::new(model_ref, Some(opts)).map_err(rt)?;
        interpreter.allocate_tensors().map_err(rt)?;
        let mut inputs = Vec::new();
        let mut in_bufs = Vec::new();
        for i in 0..interpreter.input_tensor_count() {
            let t = interpreter.input(i).map_err(rt)?;
            let d = t.data::<u8>();
            in_bufs.push(Buf {
                ptr: d.as_ptr() as *mut u8,
                len: d.len(),
            });
            inputs.push(spec(&t));
        }
        // Outputs get their buffers after allocation; reading them needs no invoke.
        let mut outputs = Vec::new();
        let mut out_bufs = Vec::new();
        for i in 0..interpreter.output_tensor_count() {
            let t = interpreter.output(i).map_err(rt)?;
            let d = t.data::<u8>();
            out_bufs.push(Buf {
                ptr: d.as_ptr() as *mut u8,
                len: d.len(),
            });
            outputs.push(spec(&t));
        }
        Ok(Self {
            interpreter,
            _model: model,
            _bytes: bytes,
            path: path.into(),
            inputs,
            outputs,
            in_bufs,
            out_bufs,
            checked: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    pub(crate) fn mismatch(&self, msg: impl Into<String>) -> EngineError {
        EngineError::Mismatch {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    /// The int8 input tensor `i` as a mutable slice.
    pub fn input_i8(&mut self, i: usize) -> &mut [i8] {
        assert_eq!(self.inputs[i].dtype, DType::Int8);
        let b = &self.in_bufs[i];
        // SAFETY: the buffer belongs to the interpreter's arena, which is allocated once in
        // `load` and never resized; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(b.ptr as *mut i8, b.len) }
    }

    /// The float input tensor `i` as a mutable slice (float peer models).
    pub fn input_f32(&mut self, i: usize) -> &mut [f32] {
        assert_eq!(self.inputs[i].dtype, DType::Float32);
        let b = &self.in_bufs[i];
        // SAFETY: as for `input_i8`; TFLite aligns tensor buffers for their type.
        unsafe { std::slice::from_raw_parts_mut(b.ptr as *mut f32, b.len / 4) }
    }

    /// Output `i`, dequantizing int8 on read.
    pub fn output(&self, i: usize) -> OutputView<'_> {
        let b = &self.out_bufs[i];
        let s = &self.outputs[i];
        // SAFETY: as for inputs; outputs are only read between invokes.
        unsafe {
            match s.dtype {
                DType::Int8 => OutputView::I8(
                    std::slice::from_raw_parts(b.ptr as *const i8, b.len),
                    s.quant.unwrap_or(QParams {
                        scale: 1.0,
                        zero_point: 0,
                    }),
                ),
                DType::Float32 => {
                    OutputView::F32(std::slice::from_raw_parts(b.ptr as *const f32, b.len / 4))
                }
                _ => unreachable!("checked when the model was accepted"),
            }
        }
    }

    /// Runs the model. The first call also checks the cached buffers (warm-up may allocate).
    pub fn invoke(&mut self) -> Result<(), EngineError> {
        self.interpreter
            .invoke()
            .map_err(|e| EngineError::Runtime {
                path: self.path.clone(),
                msg: e.to_string(),
            })?;
        if !self.checked {
            self.check_buffers()?;
            self.checked = true;
        }
        Ok(())
    }

    /// Whether the input / output buffers cached at load are still where the runtime keeps the
    /// tensors. The per-frame path reads and writes them directly; a runtime that moved one
    /// (a re-allocation) would leave a dangling slice, so this refuses to go on instead.
    /// Asks tflitec for every tensor, which allocates: done once, after the first invoke.
    pub fn check_buffers(&self) -> Result<(), EngineError> {
        let moved = |what: &str, i: usize| EngineError::Mismatch {
            path: self.path.clone(),
            msg: format!("the runtime moved {what} tensor {i} after loading"),
        };
        let rt = |e: tflitec::Error| EngineError::Runtime {
            path: self.path.clone(),
            msg: e.to_string(),
        };
        for (i, b) in self.in_bufs.iter().enumerate() {
            let t = self.interpreter.input(i).map_err(rt)?;
            let d = t.data::<u8>();
            if !std::ptr::eq(d.as_ptr(), b.ptr) || d.len() != b.len {
                return Err(moved("input", i));
            }
        }
        for (i, b) in self.out_bufs.iter().enumerate() {
            let t = self.interpreter.output(i).map_err(rt)?;
            let d = t.data::<u8>();
            if !std::ptr::eq(d.as_ptr(), b.ptr) || d.len() != b.len {
                return Err(moved("output", i));
            }
        }
        Ok(())
    }
}

fn spec(t: &tflitec::tensor::Tensor) -> TensorSpec {
    TensorSpec {
        name: t.name().to_string(),
        shape: t.shape().dimensions().clone(),
        dtype: dtype(t.data_type()),
        quant: t.quantization_parameters().map(|q| QParams {
            scale: q.scale,
            zero_point: q.zero_point,
        }),
    }
}
