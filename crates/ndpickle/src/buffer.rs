//! Out-of-band buffers of a [`crate::Payload`]: borrowed from the array (zero copies), shared
//! with the array's owner (zero copies, reference-counted) or owned (a packed copy of a sparse
//! view), each with its read-only flag.

use std::ops::Deref;

use bytes::Bytes;

use crate::codec::FrameInfo;

/// Where a buffer's bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data<'a> {
    /// The caller's memory, borrowed.
    Borrowed(&'a [u8]),
    /// Memory kept alive by a reference count shared with its owner.
    Shared(Bytes),
    /// Bytes the buffer owns.
    Owned(Vec<u8>),
}

impl Deref for Data<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Borrowed(s) => s,
            Data::Shared(b) => b,
            Data::Owned(v) => v,
        }
    }
}

/// One out-of-band buffer, in the order `NEXT_BUFFER` opcodes consume them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadBuffer<'a> {
    data: Data<'a>,
    readonly: bool,
    frame: Option<FrameInfo>,
}

impl<'a> PayloadBuffer<'a> {
    /// A buffer over borrowed memory: no copy.
    pub fn borrowed(data: &'a [u8], readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Data::Borrowed(data),
            readonly,
            frame: None,
        }
    }

    /// A buffer over memory shared with its owner (an `ArcArray`, an arrow buffer, a
    /// [`crate::NdArray`]'s data): no copy, and no borrow either.
    pub fn shared(data: Bytes, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Data::Shared(data),
            readonly,
            frame: None,
        }
    }

    /// A buffer that owns its bytes (a packed copy).
    pub fn owned(data: Vec<u8>, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Data::Owned(data),
            readonly,
            frame: None,
        }
    }

    /// A compressed frame: `data` decodes, per `frame`, to the buffer's bytes.
    pub fn compressed(data: Vec<u8>, frame: FrameInfo, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Data::Owned(data),
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
            data: Data::Borrowed(data),
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
        matches!(self.data, Data::Borrowed(_))
    }

    /// Whether the bytes are shared with their owner through a reference count (zero copies,
    /// see [`PayloadBuffer::shared`]).
    pub fn is_shared(&self) -> bool {
        matches!(self.data, Data::Shared(_))
    }

    /// The same buffer with no borrow of the caller's memory: a borrowed slice lying inside
    /// one of `owners` becomes a shared slice of it (no copy); any other borrowed slice is
    /// copied.
    #[cfg(feature = "serde")]
    pub(crate) fn detach<'b>(self, owners: &[Bytes]) -> PayloadBuffer<'b> {
        let data = match self.data {
            Data::Borrowed(s) => match owners.iter().find(|o| contains(o, s)) {
                Some(owner) => Data::Shared(owner.slice_ref(s)),
                None => Data::Owned(crate::alloc::copy_to_vec(s)),
            },
            Data::Shared(b) => Data::Shared(b),
            Data::Owned(v) => Data::Owned(v),
        };
        PayloadBuffer {
            data,
            readonly: self.readonly,
            frame: self.frame,
        }
    }

    /// The bytes (the compressed frame when [`PayloadBuffer::frame_info`] is set).
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Takes the bytes out, copying only if they were borrowed.
    pub fn into_vec(self) -> Vec<u8> {
        match self.data {
            Data::Borrowed(s) => crate::alloc::copy_to_vec(s),
            Data::Shared(b) => Vec::from(b),
            Data::Owned(v) => v,
        }
    }
}

/// Whether `part` lies within `whole`'s memory (by address).
#[cfg(feature = "serde")]
fn contains(whole: &[u8], part: &[u8]) -> bool {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
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
