//! Out-of-band buffers of a [`crate::Payload`]: borrowed from the array (zero copies) or owned
//! (a packed copy of a sparse view), each with its read-only flag.

use std::borrow::Cow;
use std::ops::Deref;

use crate::codec::FrameInfo;

/// One out-of-band buffer, in the order `NEXT_BUFFER` opcodes consume them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadBuffer<'a> {
    data: Cow<'a, [u8]>,
    readonly: bool,
    frame: Option<FrameInfo>,
}

impl<'a> PayloadBuffer<'a> {
    /// A buffer over borrowed memory: no copy.
    pub fn borrowed(data: &'a [u8], readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Borrowed(data),
            readonly,
            frame: None,
        }
    }

    /// A buffer that owns its bytes (a packed copy).
    pub fn owned(data: Vec<u8>, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Owned(data),
            readonly,
            frame: None,
        }
    }

    /// A compressed frame: `data` decodes, per `frame`, to the buffer's bytes.
    pub fn compressed(data: Vec<u8>, frame: FrameInfo, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Owned(data),
            readonly,
            frame: Some(frame),
        }
    }

    /// A compressed frame over borrowed memory: no copy.
    pub fn compressed_borrowed(
        data: &'a [u8],
        frame: FrameInfo,
        readonly: bool,
    ) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Borrowed(data),
            readonly,
            frame: Some(frame),
        }
    }

    /// How the bytes are compressed; `None` when they are the buffer itself.
    pub fn frame_info(&self) -> Option<&FrameInfo> {
        self.frame.as_ref()
    }

    /// Length of the buffer once decompressed (its own length when raw).
    pub fn raw_len(&self) -> u64 {
        self.frame
            .as_ref()
            .map_or(self.data.len() as u64, FrameInfo::raw_len)
    }

    /// Whether the pickle marks this buffer read-only (`READONLY_BUFFER`).
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Whether the bytes are borrowed from the caller's memory (zero copies).
    pub fn is_borrowed(&self) -> bool {
        matches!(self.data, Cow::Borrowed(_))
    }

    /// The bytes (the compressed frame when [`PayloadBuffer::frame_info`] is set).
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Takes the bytes out, copying only if they were borrowed.
    pub fn into_vec(self) -> Vec<u8> {
        self.data.into_owned()
    }
}

impl Deref for PayloadBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl AsRef<[u8]> for PayloadBuffer<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}
