//! Block splitting and the worker threads.
//!
//! A buffer is cut into blocks of `block_size` raw bytes (the last one may be shorter); each
//! block is shuffled and compressed on its own, so blocks can be worked on in parallel and the
//! scratch memory per thread stays at about two blocks. Threads take contiguous runs of blocks
//! (`std::thread::scope`, the calling thread takes the first run), so their outputs concatenate
//! in order.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::header::{FrameInfo, Streams, ZSTD_MAGIC};
use super::lz4::{self, Lz4State};
use super::shuffle::{shuffle, unshuffle_planes, unshuffle_uninit};
use super::zstd::ZstdState;
use super::{Codec, Filter};
use crate::alloc::large_vec;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::wire;

/// Bit 31 of a split-stream table entry: the plane is stored as is.
pub(crate) const RAW_STREAM: u32 = 1 << 31;
/// Bit 30 of a split-stream table entry: the plane is one byte repeated; the stream is that byte.
pub(crate) const RUN_STREAM: u32 = 1 << 30;
/// The length bits of a split-stream table entry.
const STREAM_LEN: u32 = RUN_STREAM - 1;

/// The byte `plane` consists of, if it is one byte repeated (and not empty).
fn run_byte(plane: &[u8]) -> Option<u8> {
    let &first = plane.first()?;
    let splat = [first; 64];
    let mut chunks = plane.chunks_exact(64);
    let body = chunks.all(|c| c == splat);
    (body && chunks.remainder().iter().all(|&b| b == first)).then_some(first)
}

/// How many of the 256 byte values 1 KiB from the middle of `plane` holds (noise: 251
/// expected; a constant plane: 1): a microsecond's check before the lz4 probe.
fn byte_values(plane: &[u8]) -> u32 {
    const SAMPLE: usize = 1024;
    let at = plane.len().saturating_sub(SAMPLE) / 2;
    let mut seen = [0u64; 4];
    for &b in &plane[at..plane.len().min(at + SAMPLE)] {
        seen[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    seen.iter().map(|w| w.count_ones()).sum::<u32>()
}

fn corrupt(what: &str) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Codec(what.to_string()))
}

/// Per-thread reusable state: codec contexts and buffers.
#[derive(Default)]
pub(crate) struct Worker {
    pub(crate) lz4: Lz4State,
    zstd: ZstdState,
    /// Shuffled input (compression) or decoded-but-shuffled output (decompression).
    pub(crate) shuf: Vec<u8>,
    /// Compressed blocks of this worker's run, concatenated.
    out: Vec<u8>,
    /// Compressed length of each block of the run.
    lens: Vec<u32>,
    /// The auto policy's sample windows, end to end.
    pub(crate) sample: Vec<u8>,
    /// Zeros, read as every byte plane a split block stores as a run of zeros (the high
    /// bytes of small integers, and more): zeroed once, not for every such plane.
    pub(crate) zeros: Vec<u8>,
}

/// Scratch a worker keeps between calls: two default blocks' worth. A buffer written with
/// larger blocks (one block per buffer, or a header that says so) reallocates its scratch
/// per call instead of leaving it allocated in every worker for the thread's lifetime.
pub(crate) const KEPT_SCRATCH: usize = 2 * super::DEFAULT_BLOCK_SIZE;

impl Worker {
    /// Gives back the shuffle scratch and the zeros when they grew past [`KEPT_SCRATCH`].
    fn trim(&mut self) {
        for v in [&mut self.shuf, &mut self.zeros] {
            if v.capacity() > KEPT_SCRATCH {
                *v = Vec::new();
            }
        }
    }

    /// Compresses `input` (already shuffled) with `codec`, appending to `self.out`.
    pub(crate) fn encode(&mut self, codec: Codec, input: &[u8]) -> Result<usize, EncodeError> {
        let before = self.out.len();
        match codec {
            Codec::None => self.out.extend_from_slice(input),
            Codec::Lz4 => self.lz4.compress(input, &mut self.out)?,
            Codec::Zstd { level } => self.zstd.compress(level, input, &mut self.out)?,
        }
        Ok(self.out.len() - before)
    }

    /// Shuffles (if `elem > 1`) and compresses one block, as one stream or split by plane
    /// (for [`Streams::PerBlock`]: split when at least half of its planes are constant or
    /// noise).
    fn compress_block(
        &mut self,
        codec: Codec,
        elem: usize,
        streams: Streams,
        block: &[u8],
    ) -> Result<usize, EncodeError> {
        if elem > 1 {
            let mut shuf = std::mem::take(&mut self.shuf);
            shuf.resize(block.len(), 0);
            shuffle(elem, block, &mut shuf);
            let split = match streams {
                Streams::One => Ok(false),
                Streams::Split => Ok(true),
                Streams::PerBlock => self.mostly_free_planes(elem, &shuf),
            };
            let r = match split {
                Ok(true) => self.encode_split(codec, elem, &shuf),
                Ok(false) => self.encode(codec, &shuf),
                Err(e) => Err(e),
            };
            self.shuf = shuf;
            r
        } else {
            self.encode(codec, block)
        }
    }

    /// Whether at least half of the byte planes of the shuffled block `shuf` are ones a split
    /// block stores for free: constant (decoded as a fill) or noise (stored raw, decoded as a
    /// copy from the frame). Judged on 1 KiB of each plane ([`byte_values`]: one value, or at
    /// least 240 of the 256 as noise has), noise confirmed by the lz4 probe
    /// ([`Worker::plane_looks_incompressible`]); the probes stop once the answer is known.
    fn mostly_free_planes(&mut self, elem: usize, shuf: &[u8]) -> Result<bool, EncodeError> {
        let n = shuf.len() / elem;
        let need = elem.div_ceil(2);
        let mut free = 0;
        for p in 0..elem {
            if free >= need || free + (elem - p) < need {
                break;
            }
            let plane = &shuf[p * n..(p + 1) * n];
            let values = byte_values(plane);
            if values == 1 || (values >= 240 && self.plane_looks_incompressible(plane)?) {
                free += 1;
            }
        }
        Ok(free >= need)
    }

    /// The length `block` encodes to as one block of a frame (then discarded).
    pub(crate) fn encoded_len(
        &mut self,
        codec: Codec,
        elem: usize,
        streams: Streams,
        block: &[u8],
    ) -> Result<usize, EncodeError> {
        let start = self.out.len();
        let r = self.compress_block(codec, elem, streams, block);
        self.out.truncate(start);
        r
    }

    /// The split-stream block layout (see [`super::header`]): a table of `elem` `u32` entries,
    /// then one stream per byte plane (a codec frame; the plane itself when the codec would
    /// not shrink it; one byte when the plane is that byte repeated), then the `len % elem`
    /// tail bytes.
    fn encode_split(
        &mut self,
        codec: Codec,
        elem: usize,
        shuf: &[u8],
    ) -> Result<usize, EncodeError> {
        let n = shuf.len() / elem;
        let before = self.out.len();
        self.out.resize(before + 4 * elem, 0);
        for p in 0..elem {
            let plane = &shuf[p * n..(p + 1) * n];
            let start = self.out.len();
            if let Some(byte) = run_byte(plane) {
                // Constant planes (zero high bytes of small integers, zero low mantissa bytes
                // of floats that came from float32) cost one byte and decode as a fill.
                self.out.push(byte);
                let entry = RUN_STREAM | 1;
                self.out[before + 4 * p..before + 4 * p + 4].copy_from_slice(&entry.to_le_bytes());
                continue;
            }
            if codec == Codec::Lz4 && self.plane_looks_incompressible(plane)? {
                // Store the plane raw without spending a full lz4 pass on noise.
                self.out.extend_from_slice(plane);
                let entry = n as u32 | RAW_STREAM;
                self.out[before + 4 * p..before + 4 * p + 4].copy_from_slice(&entry.to_le_bytes());
                continue;
            }
            let len = self.encode(codec, plane)?;
            let entry = if len >= n {
                self.out.truncate(start);
                self.out.extend_from_slice(plane);
                n as u32 | RAW_STREAM
            } else {
                len as u32
            };
            self.out[before + 4 * p..before + 4 * p + 4].copy_from_slice(&entry.to_le_bytes());
        }
        self.out.extend_from_slice(&shuf[elem * n..]);
        Ok(self.out.len() - before)
    }

    /// Whether lz4 would not shrink `plane`, judged on up to two spread-out 8 KiB windows (the
    /// mantissa planes of float data are noise: compressing them costs the most and gains
    /// nothing). The second window is only tried when the first did not shrink, so a
    /// compressible plane pays for one window. Planes under 32 KiB are always tried.
    fn plane_looks_incompressible(&mut self, plane: &[u8]) -> Result<bool, EncodeError> {
        const WINDOW: usize = 8192;
        const WINDOWS: usize = 2;
        if plane.len() < 32 * 1024 {
            return Ok(false);
        }
        let step = plane.len() / WINDOWS;
        for w in 0..WINDOWS {
            let at = w * step + (step - WINDOW) / 2;
            let start = self.out.len();
            let packed = self.encode(Codec::Lz4, &plane[at..at + WINDOW])?;
            self.out.truncate(start);
            // lz4 adds a small header per window: noise comes out a little larger than it
            // went in.
            if packed * 100 < WINDOW * 98 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Compresses blocks `run.0..run.1` of the job; stops early (returning `false`) once the
    /// shared running total passes the job's limit.
    fn compress_run(&mut self, job: &Job<'_>, run: (usize, usize)) -> Result<bool, EncodeError> {
        self.out.clear();
        self.lens.clear();
        for i in run.0..run.1 {
            let start = i * job.block_size;
            let end = job.data.len().min(start + job.block_size);
            let n = self.compress_block(job.codec, job.elem, job.streams, &job.data[start..end])?;
            let n32 = u32::try_from(n)
                .map_err(|_| EncodeError::Codec("compressed block larger than 4 GiB".into()))?;
            self.lens.push(n32);
            if job.total.fetch_add(n, Ordering::Relaxed) + n > job.limit {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Decodes one block into `out` (exactly its raw length), writing every byte of it when
    /// it succeeds. A shuffled block is decoded into the worker's scratch and unshuffled
    /// into `out`, which need not be initialized (a fresh output buffer is never zeroed
    /// first); other blocks are decoded in place, after zeroing.
    fn decompress_block(
        &mut self,
        codec: Codec,
        elem: usize,
        streams: Streams,
        block: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> Result<(), DecodeError> {
        let split = match streams {
            Streams::One => false,
            Streams::Split => true,
            Streams::PerBlock => !block.starts_with(&ZSTD_MAGIC),
        };
        if elem > 1 {
            let mut shuf = std::mem::take(&mut self.shuf);
            shuf.resize(out.len(), 0);
            let r = if split {
                self.decode_split(codec, elem, block, &mut shuf, out)
            } else {
                let r = self.decode(codec, block, &mut shuf);
                if r.is_ok() {
                    unshuffle_uninit(elem, &shuf, out);
                }
                r
            };
            self.shuf = shuf;
            r
        } else {
            self.decode(codec, block, zeroed(out))
        }
    }

    /// Inverse of [`Worker::encode_split`]: decodes the compressed planes into `shuf` and
    /// unshuffles every plane into `out`, raw planes straight from the frame (no copy into
    /// `shuf` first).
    fn decode_split(
        &mut self,
        codec: Codec,
        elem: usize,
        block: &[u8],
        shuf: &mut [u8],
        out: &mut [MaybeUninit<u8>],
    ) -> Result<(), DecodeError> {
        let n = shuf.len() / elem;
        let table_len = wire::mul(elem, 4, "stream table length")?;
        let mut pos = table_len;
        // Per plane, the frame's bytes when it is stored raw, or zeros for a run of zeros.
        let mut raw: Vec<Option<&[u8]>> = Vec::with_capacity(elem);
        let mut zeros = std::mem::take(&mut self.zeros);
        if zeros.len() < n {
            zeros.resize(n, 0);
        }
        for p in 0..elem {
            let entry = wire::u32_le(block, 4 * p, "stream table")?;
            let len = (entry & STREAM_LEN) as usize;
            let stream = wire::slice(block, pos, len, "byte-plane stream")?;
            pos += len;
            let dst = &mut shuf[p * n..(p + 1) * n];
            raw.push(None);
            if entry & RAW_STREAM != 0 && entry & RUN_STREAM != 0 {
                return Err(corrupt("byte plane marked both raw and a run"));
            } else if entry & RUN_STREAM != 0 {
                match stream {
                    [0] => raw[p] = Some(&zeros[..n]),
                    [byte] => dst.fill(*byte),
                    _ => return Err(corrupt("run byte plane of the wrong length")),
                }
            } else if entry & RAW_STREAM != 0 {
                if len != n {
                    return Err(corrupt("raw byte plane of the wrong length"));
                }
                raw[p] = Some(stream);
            } else {
                self.decode(codec, stream, dst)?;
            }
        }
        let tail = &block[pos.min(block.len())..];
        if tail.len() != shuf.len() - elem * n {
            return Err(corrupt("split block has the wrong length"));
        }
        let planes: Vec<&[u8]> = raw
            .iter()
            .enumerate()
            .map(|(p, r)| r.unwrap_or(&shuf[p * n..(p + 1) * n]))
            .collect();
        unshuffle_planes(elem, &planes, tail, out);
        drop(planes);
        drop(raw);
        self.zeros = zeros; // for the next block; `trim` bounds what outlives the call
        Ok(())
    }

    fn decode(&mut self, codec: Codec, block: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
        match codec {
            Codec::None => {
                if block.len() != out.len() {
                    return Err(DecodeError::new(DecodeErrorKind::Codec(
                        "raw block length mismatch".into(),
                    )));
                }
                out.copy_from_slice(block);
                Ok(())
            }
            Codec::Lz4 => lz4::decompress(block, out),
            Codec::Zstd { .. } => self.zstd.decompress(block, out),
        }
    }
}

/// One buffer to compress, shared by the worker threads.
struct Job<'a> {
    data: &'a [u8],
    codec: Codec,
    elem: usize,
    streams: Streams,
    block_size: usize,
    /// Compressed bytes produced so far, by all threads.
    total: AtomicUsize,
    /// Give up once `total` passes this.
    limit: usize,
}

/// Per-block compressed lengths and the frame.
pub(crate) type Frame = (Vec<u32>, Vec<u8>);

/// An upper bound of the frame length for `len` raw bytes in `n_blocks` blocks of `elem`-byte
/// elements: lz4's worst case (`len / 255 + 16` plus the 4-byte prefix per stream) plus the
/// split-stream tables, with room for one stream's scratch on top.
fn frame_bound(len: usize, n_blocks: usize, elem: usize) -> usize {
    let per_block = elem.saturating_mul(4 + 4 + 16).saturating_add(64);
    len.saturating_add(len / 255)
        .saturating_add(n_blocks.saturating_mul(per_block))
}

/// Splits `0..n` into `parts` contiguous runs of nearly equal length.
fn runs(n: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..parts).map(move |t| (t * n / parts, (t + 1) * n / parts))
}

fn thread_panicked() -> String {
    "a codec worker thread panicked".to_string()
}

/// Compresses `data` in blocks. Returns the per-block compressed lengths and the frame, or
/// `None` if the frame grew past `limit` bytes (then the work was cut short).
pub(crate) fn compress_blocks(
    data: &[u8],
    codec: Codec,
    filter: Filter,
    streams: Streams,
    block_size: usize,
    workers: &mut [Worker],
    limit: usize,
) -> Result<Option<Frame>, EncodeError> {
    let job = Job {
        data,
        codec,
        elem: filter.elem_size(),
        streams,
        block_size,
        total: AtomicUsize::new(0),
        limit,
    };
    let n_blocks = data.len().div_ceil(block_size).max(1);
    let threads = workers.len().min(n_blocks).max(1);
    let workers = &mut workers[..threads];
    let plan: Vec<(usize, usize)> = runs(n_blocks, threads).collect();
    // Room for the frame of `blocks` blocks of `raw` bytes, or for what the limit allows.
    let bound = |blocks: usize, raw: usize| {
        frame_bound(raw, blocks, job.elem)
            .min(limit.saturating_add(frame_bound(block_size, 1, job.elem)))
    };
    // The first run is written straight into the whole frame's reservation (only written
    // pages become memory), so the frame is written in place and handed over without
    // regrowing; the other runs are appended to it.
    if workers[0].out.capacity() < bound(n_blocks, data.len()) {
        workers[0].out = large_vec(bound(n_blocks, data.len()));
    }
    for (w, &(a, b)) in workers.iter_mut().zip(&plan).skip(1) {
        let raw = (b * block_size).min(data.len()) - a * block_size;
        if w.out.capacity() < bound(b - a, raw) {
            w.out = large_vec(bound(b - a, raw));
        }
    }
    let complete = if threads == 1 {
        workers[0].compress_run(&job, plan[0])
    } else {
        let results: Vec<Result<bool, EncodeError>> = std::thread::scope(|s| {
            let (first, rest) = workers.split_at_mut(1);
            let job = &job;
            let handles: Vec<_> = rest
                .iter_mut()
                .zip(&plan[1..])
                .map(|(w, &r)| s.spawn(move || w.compress_run(job, r)))
                .collect();
            let mut out = vec![first[0].compress_run(job, plan[0])];
            for h in handles {
                out.push(
                    h.join()
                        .unwrap_or_else(|_| Err(EncodeError::Codec(thread_panicked()))),
                );
            }
            out
        });
        results
            .into_iter()
            .try_fold(true, |all, r| r.map(|done| all && done))
    };
    workers.iter_mut().for_each(Worker::trim);
    if !complete? {
        return Ok(None);
    }
    let lens: Vec<u32> = workers
        .iter()
        .flat_map(|w| w.lens.iter().copied())
        .collect();
    // Not shrunk: the unwritten tail of the reservation was never touched, so it costs no
    // memory, and the allocator can hand the same block to the next frame.
    let (first, rest) = workers.split_at_mut(1);
    let mut frame = std::mem::take(&mut first[0].out);
    for w in rest {
        frame.extend_from_slice(&w.out);
        // Keep small run buffers for the next call; give large ones back.
        if w.out.capacity() > 4 * block_size {
            w.out = Vec::new();
        }
    }
    Ok(Some((lens, frame)))
}

/// One block to decode: its compressed bytes and its place in the output.
type BlockJob<'a> = (&'a [u8], &'a mut [MaybeUninit<u8>]);

/// `out` filled with zeros, as the initialized bytes it then is.
fn zeroed(out: &mut [MaybeUninit<u8>]) -> &mut [u8] {
    out.fill(MaybeUninit::new(0));
    // SAFETY: every element was just initialized, and `[MaybeUninit<u8>]` has the layout of
    // `[u8]`; the borrow of `out` moves into the result.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(std::ptr::from_mut(out) as *mut [u8])
    }
}

/// Decodes a validated frame into `out` (exactly `info.raw_len()` bytes, which need not be
/// initialized); when it returns `Ok`, every byte of `out` has been written.
pub(crate) fn decompress_blocks(
    frame: &[u8],
    info: &FrameInfo,
    out: &mut [MaybeUninit<u8>],
    workers: &mut [Worker],
) -> Result<(), DecodeError> {
    let codec = info.codec();
    let elem = info.elem_size();
    let streams = info.streams();
    let lens = info.block_lens();
    let n_blocks = lens.len();
    // One job per block: (compressed bytes, raw output slice), in order.
    let mut jobs: Vec<BlockJob<'_>> = Vec::with_capacity(n_blocks);
    let (mut src, mut dst) = (frame, out);
    let short = || {
        DecodeError::new(DecodeErrorKind::Codec(
            "frame shorter than its blocks".into(),
        ))
    };
    for (i, &len) in lens.iter().enumerate() {
        let (s, s_rest) = src.split_at_checked(len as usize).ok_or_else(short)?;
        let (d, d_rest) = dst
            .split_at_mut_checked(info.block_raw_len(i))
            .ok_or_else(short)?;
        jobs.push((s, d));
        src = s_rest;
        dst = d_rest;
    }
    let threads = workers.len().min(n_blocks).max(1);
    let run = |w: &mut Worker, jobs: &mut [BlockJob<'_>]| -> Result<(), DecodeError> {
        for (s, d) in jobs.iter_mut() {
            w.decompress_block(codec, elem, streams, s, d)?;
        }
        Ok(())
    };
    if threads == 1 {
        let result = run(&mut workers[0], &mut jobs);
        workers[0].trim();
        return result;
    }
    // Split the job list into contiguous runs, one per thread.
    let mut parts: Vec<&mut [BlockJob<'_>]> = Vec::with_capacity(threads);
    let mut rest: &mut [BlockJob<'_>] = &mut jobs;
    for (a, b) in runs(n_blocks, threads) {
        let (head, tail) = rest.split_at_mut(b - a);
        parts.push(head);
        rest = tail;
    }
    let result = std::thread::scope(|s| {
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap_or_default();
        let (w0, ws) = workers.split_at_mut(1);
        let handles: Vec<_> = ws
            .iter_mut()
            .zip(parts)
            .map(|(w, p)| s.spawn(move || run(w, p)))
            .collect();
        let mut result = run(&mut w0[0], first);
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(DecodeError::new(DecodeErrorKind::Codec(thread_panicked())))
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    });
    workers[..threads].iter_mut().for_each(Worker::trim);
    result
}
