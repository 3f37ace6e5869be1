#![doc = include_str!("../../../README.md")]
#![deny(unsafe_code)]

mod alloc;
pub mod array;
#[cfg(feature = "arrow")]
pub mod arrow;
pub mod buffer;
pub mod codec;
pub mod dtype;
pub mod error;
pub mod inspect;
mod layout;
pub mod opcodes;
pub mod read;
#[cfg(feature = "serde")]
pub mod serde;
pub mod span;
pub mod value;
mod wire;
pub mod write;

pub use array::NdArray;
pub use buffer::PayloadBuffer;
pub use dtype::{ByteOrder, DType, Element, Field, Scalar, TimeKind, TimeUnit};
pub use error::{DecodeError, DecodeErrorKind, EncodeError, OptionsError, PathIoError, WireError};
pub use layout::{DEFAULT_SPAN_THRESHOLD, LayoutPolicy};
pub use read::{
    InBuffer, ReadOptions, ReadOptionsBuilder, from_bytes, from_bytes_payload,
    from_bytes_payload_with, from_bytes_with, from_payload, from_payload_with, from_reader,
    from_reader_with, from_slice, from_slice_with,
};
pub use span::SpanView;
pub use value::{Global, Object, Value};
pub use write::{
    NumpyForm, Payload, ToPickle, WriteOptions, WriteOptionsBuilder, inline_buffers,
    inline_buffers_compressing, inline_buffers_lazy, to_file, to_file_with, to_payload,
    to_payload_with, to_vec, to_vec_with, to_writer, to_writer_with,
};

/// Building blocks the Python bindings, the benches, the fuzz targets and the tests share
/// with the core: the layout plan, the portable array writer's parts, the shuffle kernels.
/// Not part of the public API: no documentation, no stability promise.
#[doc(hidden)]
pub mod internals {
    /// The byte-shuffle kernels (and the naive reference the tests compare them with).
    pub mod shuffle {
        pub use crate::codec::shuffle::{
            Kernels, LANES, shuffle, shuffle_naive, shuffle_with, unshuffle, unshuffle_with,
        };
    }
    pub use crate::alloc::copy_to_vec;
    pub use crate::layout::{Extent, Order, Plan, pack_chunks, pack_into, packed_strides, plan};
    pub use crate::write::numpy::{
        ArrayParts, Body, BodyLayout, DTypeSpec, PortableLayout, plan_body, plan_parts,
        portable_spec, write_array, write_dtype, write_scalar,
    };
}
