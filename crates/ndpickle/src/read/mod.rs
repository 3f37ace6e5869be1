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

mod allow;
pub(crate) mod arena;
mod args;
mod builtins;
mod call;
mod compressed;
#[doc(hidden)]
pub mod direct;
pub(crate) mod materialize;
mod memo;
mod numpy;
mod options;
mod pyarrow;
mod stdlib;
mod text;
mod vm;

use std::io::Read;

use bytes::Bytes;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::Value;

pub use allow::PYARROW_NAMES;
pub use compressed::InBuffer;
pub(crate) use compressed::Inflated;
pub use options::{
    DEFAULT_ALLOC_BASE, DEFAULT_ALLOC_PER_INPUT_BYTE, DEFAULT_MAX_ALLOC_BYTES,
    DEFAULT_MAX_COPIED_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_MEMO_ENTRIES, PersistentIdHandler, ReadOptions, ReadOptionsBuilder,
};
#[doc(hidden)]
pub use stdlib::NAMEABLE;
pub use text::latin1_text;

/// A pickle's value with its sharing kept: what the pickle refers to more than once (a memo
/// `GET` or `DUP` of a list, dict, array...) is built once, in [`Graph::shared`], and each
/// use of it is a [`Value::Ref`] to its index there. Recursive structures (a list that
/// contains itself) are references to a value still being built. The arguments of the
/// reconstruction calls the reader matches (numpy arrays, pyarrow objects...) are plain
/// trees, so a [`Value::Object`]'s arguments hold no references.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    /// The pickle's value.
    pub root: Value,
    /// The values referred to more than once, by [`Value::Ref`] index.
    pub shared: Vec<Value>,
}

fn run(
    input: &[u8],
    shared: Option<&Bytes>,
    buffers: Vec<InBuffer>,
    opts: &ReadOptions,
) -> Result<Value, DecodeError> {
    run_accounted(input, shared, buffers, opts, false).map(|r| r.graph.root)
}

/// What one read produced, for the entry points to pick from.
struct Outcome {
    /// The value (with its sharing when asked for a graph).
    graph: Graph,
    /// Bytes of the allocation limit the read left unused.
    left: u64,
    /// The buffers decompressed on the way.
    inflated: Vec<Inflated>,
}

/// What the VM leaves once it has run the whole stream: the value graph and what the read
/// has charged so far, for a materializer (or serde's deserializer) to turn into values.
pub(crate) struct Parsed<'o> {
    /// The value graph.
    pub(crate) arena: arena::Arena,
    /// The stream's value.
    pub(crate) root: arena::Slot,
    /// The options, with the allocation limit fixed from the input's size.
    pub(crate) opts: std::borrow::Cow<'o, ReadOptions>,
    /// Bytes charged to the copy limit so far.
    pub(crate) copied: u64,
    /// Bytes charged to the allocation limit so far.
    pub(crate) alloc: u64,
    /// The in-band compressed data met so far.
    pub(crate) inflater: compressed::Inflater,
}

/// Runs the VM over the whole stream; with `share_strings`, equal short strings become one
/// node (for readers to which a string's identity means nothing, see
/// `Vm::share_short_strings`).
///
/// The allocation limit is fixed here from the input's size when the caller set none
/// ([`ReadOptions::alloc_limit`]).
pub(crate) fn parse<'o>(
    input: &[u8],
    shared: Option<&Bytes>,
    buffers: Vec<InBuffer>,
    opts: &'o ReadOptions,
    share_strings: bool,
) -> Result<Parsed<'o>, DecodeError> {
    let opts = if opts.alloc_limit_is_set() {
        std::borrow::Cow::Borrowed(opts)
    } else {
        let oob: u64 = buffers.iter().map(|b| b.data().len() as u64).sum();
        std::borrow::Cow::Owned(opts.for_input((input.len() as u64).saturating_add(oob)))
    };
    let mut buffers = buffers.into_iter();
    let mut machine = vm::Vm::new(input, shared, &opts, &mut buffers);
    if share_strings {
        machine.share_short_strings();
    }
    let root = machine.run()?;
    let end = machine.position();
    if opts.strict() && end < input.len() {
        return Err(DecodeError {
            offset: Some(end as u64),
            opcode: None,
            kind: DecodeErrorKind::TrailingData((input.len() - end) as u64),
        });
    }
    let copied = machine.copied();
    let alloc = machine.allocated();
    let arena = std::mem::take(&mut machine.arena);
    let inflater = std::mem::replace(&mut machine.inflater, compressed::Inflater::new());
    drop(machine);
    Ok(Parsed {
        arena,
        root,
        opts,
        copied,
        alloc,
        inflater,
    })
}

/// [`run`], with everything the read knows afterwards (see [`Outcome`]).
fn run_accounted(
    input: &[u8],
    shared: Option<&Bytes>,
    buffers: Vec<InBuffer>,
    opts: &ReadOptions,
    graph: bool,
) -> Result<Outcome, DecodeError> {
    let Parsed {
        mut arena,
        root,
        opts,
        copied,
        alloc,
        mut inflater,
    } = parse(input, shared, buffers, opts, false)?;
    let mut m =
        materialize::Materializer::new(&mut arena, &opts, true, copied, alloc, &mut inflater);
    let value = if graph {
        m.materialize_graph(root)?
    } else {
        Graph {
            root: m.materialize(root)?,
            shared: Vec::new(),
        }
    };
    let left = opts.max_alloc_bytes().saturating_sub(m.allocated());
    // A chunked buffer whose last `_decompress_into` never came is never handed out.
    inflater.finish()?;
    Ok(Outcome {
        graph: value,
        left,
        inflated: inflater.take_inflated(),
    })
}

/// [`from_bytes_payload_with`], also returning the buffers the read decompressed (for
/// [`crate::inspect::read`]).
pub(crate) fn from_bytes_payload_inflated(
    pickle: Bytes,
    buffers: Vec<InBuffer>,
    opts: &ReadOptions,
) -> Result<(Value, Vec<Inflated>), DecodeError> {
    run_accounted(&pickle, Some(&pickle), buffers, opts, false).map(|r| (r.graph.root, r.inflated))
}

/// Reads a pickle with the default [`ReadOptions`]; in-band array data is copied once.
pub fn from_slice(pickle: &[u8]) -> Result<Value, DecodeError> {
    from_slice_with(pickle, &ReadOptions::default())
}

/// Reads a pickle with `opts`; in-band array data is copied once.
pub fn from_slice_with(pickle: &[u8], opts: &ReadOptions) -> Result<Value, DecodeError> {
    run(pickle, None, Vec::new(), opts)
}

/// Reads a pickle held in shared memory: in-band array data and byte strings are slices of
/// `pickle`, not copies.
pub fn from_bytes(pickle: Bytes) -> Result<Value, DecodeError> {
    from_bytes_with(pickle, &ReadOptions::default())
}

/// [`from_bytes`] with `opts`.
pub fn from_bytes_with(pickle: Bytes, opts: &ReadOptions) -> Result<Value, DecodeError> {
    run(&pickle, Some(&pickle), Vec::new(), opts)
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
    run(
        pickle,
        None,
        buffers.into_iter().map(Into::into).collect(),
        opts,
    )
}

/// [`from_payload`] over a pickle held in shared memory (in-band data is sliced, not copied).
pub fn from_bytes_payload<B>(
    pickle: Bytes,
    buffers: impl IntoIterator<Item = B>,
) -> Result<Value, DecodeError>
where
    B: Into<InBuffer>,
{
    from_bytes_payload_with(pickle, buffers, &ReadOptions::default())
}

/// [`from_bytes_payload`] with `opts`.
pub fn from_bytes_payload_with<B>(
    pickle: Bytes,
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<Value, DecodeError>
where
    B: Into<InBuffer>,
{
    run(
        &pickle,
        Some(&pickle),
        buffers.into_iter().map(Into::into).collect(),
        opts,
    )
}

/// [`from_bytes_payload_with`], also returning how many bytes of the allocation limit the
/// read left unused, so that a caller that builds objects from the value (the Python
/// bindings) can charge its own allocations against what remains.
#[doc(hidden)]
pub fn from_bytes_payload_accounted<B>(
    pickle: Bytes,
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<(Value, u64), DecodeError>
where
    B: Into<InBuffer>,
{
    let buffers = buffers.into_iter().map(Into::into).collect();
    run_accounted(&pickle, Some(&pickle), buffers, opts, false).map(|r| (r.graph.root, r.left))
}

/// [`from_bytes_payload_accounted`] keeping the pickle's sharing: the value as a [`Graph`].
#[doc(hidden)]
pub fn graph_from_bytes_payload_accounted<B>(
    pickle: Bytes,
    buffers: impl IntoIterator<Item = B>,
    opts: &ReadOptions,
) -> Result<(Graph, u64), DecodeError>
where
    B: Into<InBuffer>,
{
    let buffers = buffers.into_iter().map(Into::into).collect();
    run_accounted(&pickle, Some(&pickle), buffers, opts, true).map(|r| (r.graph, r.left))
}

/// Reads a whole pickle stream from `reader` (at most [`ReadOptions::max_alloc_bytes`]).
pub fn from_reader(reader: impl Read) -> Result<Value, DecodeError> {
    from_reader_with(reader, &ReadOptions::default())
}

/// [`from_reader`] with `opts`.
pub fn from_reader_with(reader: impl Read, opts: &ReadOptions) -> Result<Value, DecodeError> {
    from_bytes_with(read_stream(reader, opts)?, opts)
}

/// The whole stream `reader` gives, refused beyond [`ReadOptions::max_alloc_bytes`].
pub(crate) fn read_stream(reader: impl Read, opts: &ReadOptions) -> Result<Bytes, DecodeError> {
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
    Ok(Bytes::from(buf))
}
