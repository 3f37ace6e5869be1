//! The safe pickle reader: a VM that executes nothing.
//!
//! [`from_slice`], [`from_bytes`], [`from_payload`] and [`from_reader`] run every opcode of
//! protocols 0 to 5 over an arena of values (module `vm`), resolve globals only through an
//! allow-list (module `allow`), then build the [`Value`] tree (module `materialize`) and match the
//! recorded calls against the numpy (module `numpy`), pyarrow (module `pyarrow`) and builtin
//! (module `builtins`) reconstruction shapes. Resource limits come from [`ReadOptions`].
//!
//! Arrays whose data comes from out-of-band buffers view those buffers without copying;
//! in-band data is copied once out of a `&[u8]` input, or sliced without copying from a
//! [`Bytes`] input. Compressed data (the writer's in-band `ndpickle._decompress(...)` form,
//! or out-of-band [`InBuffer`]s with a frame) is decompressed within the configured limits.

mod alloc;
mod allow;
mod builtins;
mod call;
mod compressed;
mod materialize;
mod memo;
mod numpy;
mod options;
mod pyarrow;
mod text;
mod vm;

use std::io::Read;

use bytes::Bytes;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::Value;

pub use allow::PYARROW_NAMES;
pub use compressed::InBuffer;
pub use options::{
    DEFAULT_MAX_ALLOC_BYTES, DEFAULT_MAX_COPIED_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_MEMO_ENTRIES, PersistentIdHandler, ReadOptions,
    ReadOptionsBuilder,
};

fn run(
    input: &[u8],
    shared: Option<&Bytes>,
    buffers: &mut dyn Iterator<Item = InBuffer>,
    opts: &ReadOptions,
) -> Result<Value, DecodeError> {
    let mut machine = vm::Vm::new(input, shared, opts, buffers);
    let root = machine.run()?;
    let copied = machine.copied();
    let alloc = machine.allocated();
    let mut arena = std::mem::take(&mut machine.arena);
    let mut inflater = std::mem::replace(&mut machine.inflater, compressed::Inflater::new());
    drop(machine);
    let mut m =
        materialize::Materializer::new(&mut arena, opts, true, copied, alloc, &mut inflater);
    let value = m.materialize(root)?;
    // A chunked buffer whose last `_decompress_into` never came is never handed out.
    inflater.finish()?;
    Ok(value)
}

/// Reads a pickle with the default [`ReadOptions`]; in-band array data is copied once.
pub fn from_slice(pickle: &[u8]) -> Result<Value, DecodeError> {
    from_slice_with(pickle, &ReadOptions::default())
}

/// Reads a pickle with `opts`; in-band array data is copied once.
pub fn from_slice_with(pickle: &[u8], opts: &ReadOptions) -> Result<Value, DecodeError> {
    run(pickle, None, &mut std::iter::empty::<InBuffer>(), opts)
}

/// Reads a pickle held in shared memory: in-band array data and byte strings are slices of
/// `pickle`, not copies.
pub fn from_bytes(pickle: Bytes) -> Result<Value, DecodeError> {
    from_bytes_with(pickle, &ReadOptions::default())
}

/// [`from_bytes`] with `opts`.
pub fn from_bytes_with(pickle: Bytes, opts: &ReadOptions) -> Result<Value, DecodeError> {
    run(
        &pickle,
        Some(&pickle),
        &mut std::iter::empty::<InBuffer>(),
        opts,
    )
}

/// Reads a protocol-5 pickle with its out-of-band buffers, in the order `NEXT_BUFFER`
/// consumes them. Arrays over raw buffers are views of them: no bytes are copied.
///
/// A buffer is anything that converts into an [`InBuffer`]: [`Bytes`], `Vec<u8>`,
/// `&'static [u8]`, or `(frame, FrameInfo)` for a compressed buffer (as
/// [`crate::to_payload`] writes with compression on), which is decompressed when
/// `NEXT_BUFFER` takes it, within [`ReadOptions::max_decompressed_bytes`] and
/// [`ReadOptions::max_alloc_bytes`].
pub fn from_payload<B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
) -> Result<Value, DecodeError>
where
    B: Into<InBuffer>,
{
    from_payload_with(pickle, buffers, &ReadOptions::default())
}

/// [`from_payload`] with `opts`.
pub fn from_payload_with<B>(
    pickle: &[u8],
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<Value, DecodeError>
where
    B: Into<InBuffer>,
{
    let mut it = buffers.into_iter().map(Into::into);
    run(pickle, None, &mut it, opts)
}

/// [`from_payload`] over a pickle held in shared memory (in-band data is sliced, not copied).
pub fn from_bytes_payload_with<B>(
    pickle: Bytes,
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<Value, DecodeError>
where
    B: Into<InBuffer>,
{
    let mut it = buffers.into_iter().map(Into::into);
    run(&pickle, Some(&pickle), &mut it, opts)
}

/// Reads a whole pickle stream from `reader` (at most [`ReadOptions::max_alloc_bytes`]).
pub fn from_reader(reader: impl Read) -> Result<Value, DecodeError> {
    from_reader_with(reader, &ReadOptions::default())
}

/// [`from_reader`] with `opts`.
pub fn from_reader_with(reader: impl Read, opts: &ReadOptions) -> Result<Value, DecodeError> {
    let mut buf = Vec::new();
    reader
        .take(opts.max_alloc_bytes().saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| DecodeError::new(DecodeErrorKind::Io(e)))?;
    if buf.len() as u64 > opts.max_alloc_bytes() {
        return Err(DecodeError::new(DecodeErrorKind::Limit {
            limit: "stream size in bytes",
            max: opts.max_alloc_bytes(),
        }));
    }
    from_bytes_with(Bytes::from(buf), opts)
}
