//! The pickle writer: [`to_vec`], [`to_writer`], [`to_payload`] and their options.

pub mod atomic;
mod chunked;
mod encoder;
mod file;
mod frame;
pub(crate) mod numpy;
mod options;
mod to_pickle;

use std::io::Write;

pub use atomic::AtomicFile;
#[cfg(feature = "arrow")]
pub(crate) use encoder::MemoKey;
pub use encoder::{BytesKind, ChunkSink, ChunkSource, Encoder, FRAME_MAX, ItemFn, LARGE_PAYLOAD};
pub use file::{
    FILE_ALIGN, inline_buffers, inline_buffers_compressing, inline_buffers_lazy, to_file,
    to_file_with,
};
pub use options::{COMPRESS_CHUNK, NumpyForm, WriteOptions, WriteOptionsBuilder};
pub use to_pickle::ToPickle;
#[cfg(feature = "serde")]
pub(crate) use to_pickle::ndarray_parts;

use crate::buffer::PayloadBuffer;
use crate::error::EncodeError;

/// A pickle whose array data travels beside it: pass `buffers` to
/// `pickle.loads(pickle, buffers=buffers)` to rebuild the objects.
#[derive(Debug)]
pub struct Payload<'a> {
    /// The pickle stream (protocol 5), with a `NEXT_BUFFER` for each buffer.
    pub pickle: Vec<u8>,
    /// The out-of-band buffers, in order; borrowed from the arrays where possible.
    pub buffers: Vec<PayloadBuffer<'a>>,
}

impl Payload<'_> {
    /// Total bytes of the pickle and its buffers.
    pub fn total_len(&self) -> usize {
        self.pickle.len() + self.buffers.iter().map(|b| b.len()).sum::<usize>()
    }
}

/// Pickles `value` in-band with protocol 5 and the portable numpy form.
pub fn to_vec<T: ToPickle + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    to_vec_with(value, &WriteOptions::default())
}

/// Pickles `value` in-band with the given options.
pub fn to_vec_with<T: ToPickle + ?Sized>(
    value: &T,
    opts: &WriteOptions,
) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder::to_vec(opts, false)?;
    value.to_pickle(&mut enc)?;
    enc.finish().map(|(v, _)| v)
}

/// Streams the pickle of `value` to `w` (protocol 5, portable form); array data goes from
/// the array's memory straight to the writer, with no temporary copy.
pub fn to_writer<W: Write, T: ToPickle + ?Sized>(w: W, value: &T) -> Result<(), EncodeError> {
    to_writer_with(w, value, &WriteOptions::default())
}

/// Streams the pickle of `value` to `w` with the given options.
pub fn to_writer_with<W: Write, T: ToPickle + ?Sized>(
    mut w: W,
    value: &T,
    opts: &WriteOptions,
) -> Result<(), EncodeError> {
    let mut enc = Encoder::to_writer(opts, &mut w)?;
    value.to_pickle(&mut enc)?;
    enc.finish().map(|_| ())
}

/// Pickles `value` with array data out-of-band (protocol 5, portable form): contiguous
/// arrays and dense spans are borrowed, not copied.
pub fn to_payload<T: ToPickle + ?Sized>(value: &T) -> Result<Payload<'_>, EncodeError> {
    to_payload_with(value, &WriteOptions::default())
}

/// [`to_payload`] with the given options.
pub fn to_payload_with<'a, T: ToPickle + ?Sized>(
    value: &'a T,
    opts: &WriteOptions,
) -> Result<Payload<'a>, EncodeError> {
    let mut enc = Encoder::to_vec(opts, true)?;
    value.to_pickle(&mut enc)?;
    let (pickle, buffers) = enc.finish()?;
    Ok(Payload { pickle, buffers })
}
