//! Per-buffer compression: lz4 or zstd, optionally after a byte shuffle, in independent blocks.
//!
//! - [`Codec`] × [`Filter`] say how one buffer is encoded; [`Compression`] says how to choose
//!   (never, always the same, or [`AutoPolicy`]: only when a sample shows it pays).
//! - [`compress`] turns a buffer into a [`Compressed`]: a frame plus its [`FrameInfo`], or "kept
//!   raw" (then the caller sends the original bytes, zero copies).
//! - [`decompress`] reverses it, never allocating more than the caller's limit and never
//!   panicking on corrupt input.
//! - [`Scratch`] holds what is worth reusing across buffers: codec contexts, lz4 match tables,
//!   shuffle and output buffers, one set per worker thread.
//!
//! Frame and header byte formats are in [`header`]; the shuffle layout in `codec/shuffle.rs`; the
//! measurements behind the defaults in `DEFAULTS.md` next to this file.
//!
//! ```
//! use ndpickle::codec::{compress, decompress, Codec, Compression, Filter, Scratch};
//!
//! let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i as f64).to_le_bytes()).collect();
//! let settings = Compression::Fixed(Codec::Lz4, Filter::Shuffle { elem_size: 8 });
//! let mut scratch = Scratch::new();
//! let c = compress(&data, &settings, &mut scratch)?;
//! assert!(c.bytes().len() < data.len() / 4);
//! let back = decompress(c.bytes(), c.info(), data.len())?;
//! assert_eq!(back, data);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blocks;
pub mod header;
mod lz4;
mod named;
pub(crate) mod shuffle;
mod zstd;

pub use header::{FrameInfo, Streams};
pub use named::{DEFAULT_ZSTD_LEVEL, ZSTD_LEVELS};

/// The Python callables compressed in-band pickles name, `ndpickle._decompress(header,
/// frame, writable)` and the chunked form's `_decompress_target` / `_decompress_into` (see
/// `write::chunked`): the writer writes these names, the safe reader recognises them, and the
/// Python bindings register their functions under them.
pub mod names {
    /// The module: the `ndpickle` Python package.
    pub const MODULE: &str = "ndpickle";
    /// One compressed frame: `_decompress(header, frame, writable)`.
    pub const DECOMPRESS: &str = "_decompress";
    /// The output of a chunked buffer: `_decompress_target(raw_len)`.
    pub const DECOMPRESS_TARGET: &str = "_decompress_target";
    /// One chunk: `_decompress_into(out, offset, header, frame[, writable])`.
    pub const DECOMPRESS_INTO: &str = "_decompress_into";
}

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use blocks::Worker;

#[cfg(not(feature = "compression"))]
const NO_COMPRESSION: &str = "ndpickle was built without the `compression` feature";

/// The largest block: lz4's own input limit (`LZ4_MAX_INPUT_SIZE`, just under 2 GiB).
pub const MAX_BLOCK_SIZE: usize = 0x7E00_0000;

/// Default raw bytes per block (see `DEFAULTS.md`): large enough that per-block costs vanish and
/// lz4/zstd lose nothing measurable, small enough to keep a block and its shuffled copy in L2/L3
/// and to give threads work on multi-MiB buffers.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// The default lz4 acceleration (see `DEFAULTS.md` for the measurements).
pub const DEFAULT_LZ4_ACCELERATION: u32 = 2;

/// The largest lz4 acceleration [`CodecOptionsBuilder::lz4_acceleration`] accepts (the
/// reference library caps it at 65537).
pub const MAX_LZ4_ACCELERATION: u32 = 65_537;

/// A compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// No compression: the frame is the raw bytes.
    None,
    /// lz4 block format with a 4-byte little-endian size prefix (python-lz4's
    /// `lz4.block` layout).
    Lz4,
    /// A zstd frame with its content size, at the given level (1–22, or negative for the fast
    /// levels).
    Zstd {
        /// The compression level; irrelevant for decoding.
        level: i32,
    },
}

impl Codec {
    /// The name Dask and ndpickle's headers use: `"lz4"`, `"zstd"`, or `None` for no codec.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Codec::None => None,
            Codec::Lz4 => Some("lz4"),
            Codec::Zstd { .. } => Some("zstd"),
        }
    }
}

/// A reversible transform applied to each block before the codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// The bytes as they are.
    None,
    /// Byte transposition by element size (blosc's shuffle: the first byte of every element, then every second byte...).
    ///
    /// `elem_size: 0` in a [`Compression`] means "the buffer's item size", filled in per buffer
    /// by [`Compression::with_elem_size`]; [`compress`] refuses a 0 that was never filled in.
    Shuffle {
        /// Bytes per element (the dtype's item size).
        elem_size: usize,
    },
}

impl Filter {
    /// The element size the filter works on: 1 for no filter.
    pub fn elem_size(self) -> usize {
        match self {
            Filter::None => 1,
            Filter::Shuffle { elem_size } => elem_size,
        }
    }

    /// The name used in headers and dicts: `None` or `"shuffle"`.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Filter::None => None,
            Filter::Shuffle { .. } => Some("shuffle"),
        }
    }
}

/// How to decide, per buffer, whether and how to compress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compression {
    /// Never compress.
    Off,
    /// Always use this codec and filter (even if the result is larger).
    Fixed(Codec, Filter),
    /// Compress only when a sample says it pays, and keep the result only if the whole buffer
    /// shrank; see [`AutoPolicy`].
    Auto(AutoPolicy),
}

impl Default for Compression {
    /// [`Compression::Auto`] with the default [`AutoPolicy`] (lz4 + shuffle by item size).
    fn default() -> Compression {
        Compression::Auto(AutoPolicy::default())
    }
}

impl Compression {
    /// The settings for one buffer of `elem_size`-byte items: a shuffle filter with
    /// `elem_size: 0` gets this size. Writers call this per buffer with the dtype's item size.
    pub fn with_elem_size(self, elem_size: usize) -> Compression {
        let fill = |f: Filter| match f {
            Filter::Shuffle { elem_size: 0 } => Filter::Shuffle { elem_size },
            f => f,
        };
        match self {
            Compression::Off => Compression::Off,
            Compression::Fixed(c, f) => Compression::Fixed(c, fill(f)),
            Compression::Auto(mut p) => {
                p.filter = fill(p.filter);
                Compression::Auto(p)
            }
        }
    }
}

/// The opportunistic policy: below [`AutoPolicy::min_size`] never compress; otherwise compress
/// a sample of a few spread-out windows, compress the whole buffer only if the sample shrank to
/// at most `sample_ratio` of its size, and keep the result only if the whole shrank to at most
/// `keep_ratio`.
///
/// The sample is capped at `1 / sample_divisor` of the buffer (but windows are at least 256
/// bytes) so that incompressible data costs only a few percent over sending it raw. Defaults
/// (measured, see `DEFAULTS.md`): lz4, shuffle by item size, `min_size` 64 KiB, 5 windows of up
/// to 4 KiB, at most 1/512 of the buffer, `sample_ratio` 0.87, `keep_ratio` 0.9. On an 8 MiB
/// buffer of random float64 the decision costs about 3% of a hot-cache memcpy. Build other values
/// with [`AutoPolicy::builder`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoPolicy {
    codec: Codec,
    filter: Filter,
    min_size: usize,
    windows: usize,
    window_size: usize,
    sample_divisor: usize,
    sample_ratio: f64,
    keep_ratio: f64,
}

impl Default for AutoPolicy {
    fn default() -> AutoPolicy {
        AutoPolicy {
            codec: Codec::Lz4,
            filter: Filter::Shuffle { elem_size: 0 },
            min_size: 64 << 10,
            windows: 5,
            window_size: 4 << 10,
            sample_divisor: 512,
            sample_ratio: 0.87,
            keep_ratio: 0.9,
        }
    }
}

impl AutoPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> AutoPolicyBuilder {
        AutoPolicyBuilder(AutoPolicy::default())
    }
    /// The codec tried.
    pub fn codec(&self) -> Codec {
        self.codec
    }
    /// The filter applied before the codec.
    pub fn filter(&self) -> Filter {
        self.filter
    }
    /// Buffers shorter than this are never compressed.
    pub fn min_size(&self) -> usize {
        self.min_size
    }
    /// Number of sample windows.
    pub fn windows(&self) -> usize {
        self.windows
    }
    /// Largest size of one sample window.
    pub fn window_size(&self) -> usize {
        self.window_size
    }
    /// The sample is at most `1 / sample_divisor` of the buffer.
    pub fn sample_divisor(&self) -> usize {
        self.sample_divisor
    }
    /// The sample must compress to at most this fraction for the whole to be tried.
    pub fn sample_ratio(&self) -> f64 {
        self.sample_ratio
    }
    /// The whole must compress to at most this fraction to be kept.
    pub fn keep_ratio(&self) -> f64 {
        self.keep_ratio
    }
}

/// Builds a validated [`AutoPolicy`].
#[derive(Clone, Copy, Debug)]
pub struct AutoPolicyBuilder(AutoPolicy);

impl AutoPolicyBuilder {
    /// The codec to try (not [`Codec::None`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.0.codec = codec;
        self
    }
    /// The filter before the codec.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.0.filter = filter;
        self
    }
    /// Never compress buffers shorter than this.
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.0.min_size = bytes;
        self
    }
    /// Sample `windows` windows of up to `window_size` bytes each.
    pub fn sample(mut self, windows: usize, window_size: usize) -> Self {
        self.0.windows = windows;
        self.0.window_size = window_size;
        self
    }
    /// Cap the sample at `1 / divisor` of the buffer.
    pub fn sample_divisor(mut self, divisor: usize) -> Self {
        self.0.sample_divisor = divisor;
        self
    }
    /// The sample must shrink to at most this fraction (0 < r ≤ 1).
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        self.0.sample_ratio = ratio;
        self
    }
    /// The whole must shrink to at most this fraction (0 < r ≤ 1).
    pub fn keep_ratio(mut self, ratio: f64) -> Self {
        self.0.keep_ratio = ratio;
        self
    }
    /// Checks the values.
    pub fn build(self) -> Result<AutoPolicy, EncodeError> {
        let p = self.0;
        let bad = |m: &str| Err(EncodeError::InvalidOption(m.to_string()));
        if p.codec == Codec::None {
            return bad("the auto policy needs a codec");
        }
        if p.windows == 0 || p.window_size == 0 || p.sample_divisor == 0 {
            return bad("the auto policy needs at least one non-empty sample window");
        }
        for r in [p.sample_ratio, p.keep_ratio] {
            if !(r > 0.0 && r <= 1.0) {
                return bad("auto policy ratios must be in (0, 1]");
            }
        }
        Ok(p)
    }
}

/// One thread per core, at most 8: `available_parallelism` asked once per process (it reads
/// the cgroup files on every call, tens of microseconds, which every small `serialize` paid).
fn default_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Execution settings: block size, threads and the lz4 acceleration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecOptions {
    block_size: usize,
    threads: usize,
    lz4_acceleration: u32,
}

impl Default for CodecOptions {
    /// [`DEFAULT_BLOCK_SIZE`] blocks, one thread per core (at most 8).
    fn default() -> CodecOptions {
        CodecOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            threads: default_threads(),
            lz4_acceleration: DEFAULT_LZ4_ACCELERATION,
        }
    }
}

impl CodecOptions {
    /// A builder starting from the defaults.
    pub fn builder() -> CodecOptionsBuilder {
        CodecOptionsBuilder(CodecOptions::default())
    }
    /// Raw bytes per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }
    /// Most threads used for one buffer.
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// The lz4 acceleration (1 = the reference library's default).
    pub fn lz4_acceleration(&self) -> u32 {
        self.lz4_acceleration
    }
}

/// Builds validated [`CodecOptions`].
#[derive(Clone, Copy, Debug)]
pub struct CodecOptionsBuilder(CodecOptions);

impl CodecOptionsBuilder {
    /// Raw bytes per block, 4 KiB to [`MAX_BLOCK_SIZE`] (rounded down to a multiple of the
    /// element size when shuffling).
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.0.block_size = bytes;
        self
    }
    /// One block per buffer (up to [`MAX_BLOCK_SIZE`]): every unfiltered frame is then plain,
    /// i.e. readable by python-lz4, zstandard and Dask alone.
    pub fn single_block(mut self) -> Self {
        self.0.block_size = MAX_BLOCK_SIZE;
        self
    }
    /// Most threads per buffer (≥ 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.0.threads = threads;
        self
    }
    /// lz4 acceleration, 1 to [`MAX_LZ4_ACCELERATION`]: `LZ4_compress_fast`'s trade of ratio
    /// for speed (blosc2 uses `10 - clevel`). Readers do not need to know it.
    pub fn lz4_acceleration(mut self, acceleration: u32) -> Self {
        self.0.lz4_acceleration = acceleration;
        self
    }
    /// Checks the values.
    pub fn build(self) -> Result<CodecOptions, EncodeError> {
        let o = self.0;
        if !(4096..=MAX_BLOCK_SIZE).contains(&o.block_size) {
            return Err(EncodeError::InvalidOption(format!(
                "block size {} is outside 4096..={MAX_BLOCK_SIZE}",
                o.block_size
            )));
        }
        if !(1..=MAX_LZ4_ACCELERATION).contains(&o.lz4_acceleration) {
            return Err(EncodeError::InvalidOption(format!(
                "lz4 acceleration {} is outside 1..={MAX_LZ4_ACCELERATION}",
                o.lz4_acceleration
            )));
        }
        if o.threads == 0 {
            return Err(EncodeError::InvalidOption(
                "threads must be at least 1".into(),
            ));
        }
        Ok(o)
    }
}

/// Reusable state for compressing and decompressing many buffers: per-thread codec contexts
/// (zstd contexts, lz4 tables) and buffers. Not shared between threads; make one per thread
/// that calls [`compress`].
#[derive(Default)]
pub struct Scratch {
    options: CodecOptions,
    workers: Vec<Worker>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("options", &self.options)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Scratch {
    /// Scratch with the default [`CodecOptions`].
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// Scratch with these options.
    pub fn with_options(options: CodecOptions) -> Scratch {
        Scratch {
            options,
            workers: Vec::new(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &CodecOptions {
        &self.options
    }

    fn workers(&mut self, n: usize) -> &mut [Worker] {
        let n = n.clamp(1, self.options.threads.max(1));
        while self.workers.len() < n {
            self.workers.push(Worker::default());
        }
        for w in &mut self.workers[..n] {
            w.lz4.acceleration = self.options.lz4_acceleration;
        }
        &mut self.workers[..n]
    }
}

/// Why a buffer was kept raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeptRaw {
    /// Compression is [`Compression::Off`] (or the codec is [`Codec::None`]).
    Off,
    /// Shorter than the policy's minimum size.
    TooSmall,
    /// The sample did not shrink enough.
    SampleIncompressible,
    /// The whole buffer did not shrink enough.
    Incompressible,
}

/// The outcome of [`compress`]: a frame and its [`FrameInfo`], or a note that the buffer should
/// be sent raw.
#[derive(Clone, Debug)]
pub struct Compressed {
    info: FrameInfo,
    bytes: Vec<u8>,
    kept_raw: Option<KeptRaw>,
}

impl Compressed {
    fn raw(len: usize, why: KeptRaw) -> Compressed {
        Compressed {
            info: FrameInfo::raw(len as u64),
            bytes: Vec::new(),
            kept_raw: Some(why),
        }
    }

    /// How the frame is encoded (codec none when kept raw).
    pub fn info(&self) -> &FrameInfo {
        &self.info
    }

    /// The compressed frame; empty when kept raw (send the original buffer instead).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the buffer should be sent as is.
    pub fn is_raw(&self) -> bool {
        self.kept_raw.is_some()
    }

    /// Why the buffer was kept raw, if it was.
    pub fn kept_raw(&self) -> Option<KeptRaw> {
        self.kept_raw
    }

    /// The frame description and bytes. The `Vec` keeps the capacity the frame was written
    /// into (about the raw length): its unwritten tail was never touched, so it holds no
    /// memory, and shrinking it would only make the next frame fault fresh pages in.
    pub fn into_parts(self) -> (FrameInfo, Vec<u8>) {
        (self.info, self.bytes)
    }
}

/// The effective filter and block size for a buffer: shuffle by 1 is no filter, blocks are a
/// multiple of the element size.
fn plan(filter: Filter, options: &CodecOptions) -> Result<(Filter, usize), EncodeError> {
    let elem = filter.elem_size();
    if elem == 0 {
        return Err(EncodeError::InvalidOption(
            "shuffle element size is unset; call Compression::with_elem_size".into(),
        ));
    }
    if elem > u32::MAX as usize || elem > MAX_BLOCK_SIZE {
        return Err(EncodeError::InvalidOption(format!(
            "shuffle element size {elem} is too large"
        )));
    }
    let filter = if elem == 1 { Filter::None } else { filter };
    Ok((filter, (options.block_size / elem * elem).max(elem)))
}

/// [`compress`], keeping the frame only when it is strictly shorter than the data: a frame no
/// shorter is never worth decoding, and a kept frame is never mistaken for the raw data it
/// stands for (`serialize()` frames decoded on the way arrive at their raw length). `None`:
/// send the data as is.
pub fn compress_if_smaller(
    data: &[u8],
    settings: &Compression,
    scratch: &mut Scratch,
) -> Result<Option<(FrameInfo, Vec<u8>)>, EncodeError> {
    let c = compress(data, settings, scratch)?;
    Ok((!c.is_raw() && c.bytes().len() < data.len()).then(|| c.into_parts()))
}

/// Compresses one buffer according to `settings`.
///
/// Returns a frame plus its [`FrameInfo`], or [`Compressed::is_raw`] when the buffer is better
/// sent as is. Errors only on invalid settings or a codec failure.
pub fn compress(
    data: &[u8],
    settings: &Compression,
    scratch: &mut Scratch,
) -> Result<Compressed, EncodeError> {
    let (codec, filter, policy) = match settings {
        Compression::Off | Compression::Fixed(Codec::None, _) => {
            return Ok(Compressed::raw(data.len(), KeptRaw::Off));
        }
        Compression::Fixed(c, f) => (*c, *f, None),
        Compression::Auto(p) => (p.codec, p.filter, Some(p)),
    };
    let options = scratch.options;
    let (filter, block_size) = plan(filter, &options)?;
    let mut limit = usize::MAX;
    if let Some(p) = policy {
        if data.len() < p.min_size {
            return Ok(Compressed::raw(data.len(), KeptRaw::TooSmall));
        }
        if !sample_shrinks(data, codec, filter, p, &mut scratch.workers(1)[0])? {
            return Ok(Compressed::raw(data.len(), KeptRaw::SampleIncompressible));
        }
        limit = (data.len() as f64 * p.keep_ratio) as usize;
    }
    let n_blocks = data.len().div_ceil(block_size).max(1);
    let workers = scratch.workers(n_blocks);
    let streams = streams(codec, filter);
    match blocks::compress_blocks(data, codec, filter, streams, block_size, workers, limit)? {
        None => Ok(Compressed::raw(data.len(), KeptRaw::Incompressible)),
        Some((lens, bytes)) => {
            let info = FrameInfo::new(codec, filter, data.len() as u64, block_size as u32, lens)
                .and_then(|i| i.with_streams(streams))
                .map_err(|e| EncodeError::Codec(e.to_string()))?;
            Ok(Compressed {
                info,
                bytes,
                kept_raw: None,
            })
        }
    }
}

/// Compresses a sample of `p.windows` windows spread evenly over `data` (each shuffled on its
/// own, then compressed together) and says whether it shrank to `p.sample_ratio` or less.
fn sample_shrinks(
    data: &[u8],
    codec: Codec,
    filter: Filter,
    p: &AutoPolicy,
    worker: &mut Worker,
) -> Result<bool, EncodeError> {
    Ok(sample_ratio(data, codec, filter, p, worker)? <= p.sample_ratio)
}

/// The smallest sample window (unless the policy's window size is smaller): below this lz4 sees
/// too little of the data to judge it.
const MIN_WINDOW: usize = 256;

/// Compressed / raw size of the auto policy's sample of `data` (1.0 if there is no sample).
///
/// The windows are laid end to end and encoded as one block exactly as [`compress`] encodes
/// blocks (shuffled, and split into byte planes for lz4), so the estimate sees the same raw and
/// run planes the real encoding will.
fn sample_ratio(
    data: &[u8],
    codec: Codec,
    filter: Filter,
    p: &AutoPolicy,
    worker: &mut Worker,
) -> Result<f64, EncodeError> {
    let elem = filter.elem_size();
    let k = p.windows;
    let budget = (data.len() / p.sample_divisor).min(k * p.window_size);
    let w = (budget / k)
        .max(MIN_WINDOW.min(p.window_size))
        .div_ceil(elem)
        .saturating_mul(elem)
        .min(data.len() / elem * elem);
    if w == 0 {
        return Ok(1.0);
    }
    let span = data.len() - w;
    let mut sample = std::mem::take(&mut worker.sample);
    sample.clear();
    for i in 0..k {
        let start = if k == 1 { span / 2 } else { i * span / (k - 1) } / elem * elem;
        sample.extend_from_slice(&data[start..start + w]);
    }
    let r = worker.encoded_len(codec, elem, streams(codec, filter), &sample);
    worker.sample = sample;
    Ok(r? as f64 / (k * w) as f64)
}

/// How shuffled blocks hold their bytes: lz4 has no entropy stage and no raw fallback, so each
/// plane of a shuffle gets its own stream; zstd splits the blocks of which at least half the
/// planes are constant or noise (decoded as fills and as copies from the frame) and keeps one
/// stream for the others (see [`Streams::PerBlock`]).
fn streams(codec: Codec, filter: Filter) -> Streams {
    match (codec, filter) {
        (_, Filter::None) | (Codec::None, _) => Streams::One,
        (Codec::Lz4, _) => Streams::Split,
        (Codec::Zstd { .. }, _) => Streams::PerBlock,
    }
}

/// What the auto policy's sample of `data` compresses to (compressed / raw), for diagnostics
/// and tuning; `settings` must be [`Compression::Auto`] with its element size filled in.
pub fn sample_estimate(
    data: &[u8],
    settings: &Compression,
    scratch: &mut Scratch,
) -> Result<f64, EncodeError> {
    let Compression::Auto(p) = settings else {
        return Err(EncodeError::InvalidOption(
            "sample_estimate needs Compression::Auto".into(),
        ));
    };
    let (filter, _) = plan(p.filter, &scratch.options)?;
    sample_ratio(data, p.codec, filter, p, &mut scratch.workers(1)[0])
}

/// Decompresses a frame described by `info`, refusing (before allocating) to produce more than
/// `max_len` bytes. Uses default [`CodecOptions`] (threads); see [`decompress_with`] to reuse
/// contexts.
pub fn decompress(frame: &[u8], info: &FrameInfo, max_len: usize) -> Result<Vec<u8>, DecodeError> {
    decompress_with(frame, info, max_len, &mut Scratch::new())
}

/// [`decompress`] with reusable [`Scratch`] (zstd contexts, buffers, thread count).
pub fn decompress_with(
    frame: &[u8],
    info: &FrameInfo,
    max_len: usize,
    scratch: &mut Scratch,
) -> Result<Vec<u8>, DecodeError> {
    let len = check(frame, info, max_len)?;
    // Not zeroed: the decoders write every byte (a pass over the output saved).
    let mut out = crate::alloc::large_vec(len);
    decompress_uninit(frame, info, &mut out.spare_capacity_mut()[..len], scratch)?;
    // SAFETY: `decompress_uninit` returned `Ok`, so it wrote all `len` bytes of the spare
    // capacity, which is at least `len` long.
    #[allow(unsafe_code)]
    unsafe {
        out.set_len(len);
    }
    Ok(out)
}

/// Validates `info` against `frame` and the limit; returns the raw length.
fn check(frame: &[u8], info: &FrameInfo, max_len: usize) -> Result<usize, DecodeError> {
    info.validate()?;
    let raw = info.raw_len();
    if raw > max_len as u64 {
        return Err(DecodeError::new(DecodeErrorKind::Limit {
            limit: "decompressed buffer size",
            max: max_len as u64,
        }));
    }
    if info.frame_len() != frame.len() as u64 {
        return Err(DecodeError::new(DecodeErrorKind::Codec(format!(
            "frame is {} bytes but its header says {}",
            frame.len(),
            info.frame_len()
        ))));
    }
    Ok(raw as usize)
}

/// Decompresses into `out`, which must be exactly `info.raw_len()` bytes long (e.g. an aligned
/// or memory-mapped buffer the caller owns).
pub fn decompress_into(
    frame: &[u8],
    info: &FrameInfo,
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), DecodeError> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the decoders only
    // write initialized bytes, so `out` stays initialized whatever happens.
    #[allow(unsafe_code)]
    let out = unsafe { &mut *(std::ptr::from_mut(out) as *mut [std::mem::MaybeUninit<u8>]) };
    decompress_uninit(frame, info, out, scratch)
}

/// [`decompress_into`] for memory that need not be initialized: when it returns `Ok`, every
/// byte of `out` has been written.
fn decompress_uninit(
    frame: &[u8],
    info: &FrameInfo,
    out: &mut [std::mem::MaybeUninit<u8>],
    scratch: &mut Scratch,
) -> Result<(), DecodeError> {
    let len = check(frame, info, usize::MAX)?;
    if out.len() != len {
        return Err(DecodeError::new(DecodeErrorKind::Codec(format!(
            "output buffer is {} bytes, the frame holds {len}",
            out.len()
        ))));
    }
    if info.codec() == Codec::None {
        shuffle::write_bytes(out, frame);
        return Ok(());
    }
    let workers = scratch.workers(info.block_lens().len());
    blocks::decompress_blocks(frame, info, out, workers)
}

#[cfg(all(test, feature = "compression"))]
mod tests;
