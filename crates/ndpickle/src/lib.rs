#![doc = include_str!("../../../README.md")]
#![deny(unsafe_code)]

pub mod array;
#[cfg(feature = "arrow")]
pub mod arrow;
pub mod buffer;
pub mod codec;
pub mod dtype;
pub mod error;
pub mod inspect;
pub mod layout;
pub mod opcodes;
pub mod read;
#[cfg(feature = "serde")]
pub mod serde;
pub mod span;
pub mod value;
pub mod wire;
pub mod write;

pub use array::NdArray;
pub use buffer::PayloadBuffer;
pub use dtype::{ByteOrder, DType, Element, Field, Scalar, TimeKind, TimeUnit};
pub use error::{DecodeError, DecodeErrorKind, EncodeError, OptionsError, PathIoError, WireError};
pub use layout::LayoutPolicy;
pub use read::{
    InBuffer, ReadOptions, ReadOptionsBuilder, from_bytes, from_bytes_payload_with,
    from_bytes_with, from_payload, from_payload_with, from_reader, from_reader_with, from_slice,
    from_slice_with,
};
pub use span::SpanView;
pub use value::{Global, Object, Value};
pub use write::{
    NumpyForm, Payload, ToPickle, WriteOptions, WriteOptionsBuilder, inline_buffers,
    inline_buffers_compressing, inline_buffers_lazy, to_file, to_payload, to_vec, to_vec_with,
    to_writer, to_writer_with,
};
