//! Out-of-band buffers of a [`crate::Payload`]: borrowed from the array (zero copies) or owned
//! (a packed copy of a sparse view), each with its read-only flag.

use std::borrow::Cow;
use std::ops::Deref;

/// One out-of-band buffer, in the order `NEXT_BUFFER` opcodes consume them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadBuffer<'a> {
    data: Cow<'a, [u8]>,
    readonly: bool,
}

impl<'a> PayloadBuffer<'a> {
    /// A buffer over borrowed memory: no copy.
    pub fn borrowed(data: &'a [u8], readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Borrowed(data),
            readonly,
        }
    }

    /// A buffer that owns its bytes (a packed copy).
    pub fn owned(data: Vec<u8>, readonly: bool) -> PayloadBuffer<'a> {
        PayloadBuffer {
            data: Cow::Owned(data),
            readonly,
        }
    }

    /// Whether the pickle marks this buffer read-only (`READONLY_BUFFER`).
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// Whether the bytes are borrowed from the caller's memory (zero copies).
    pub fn is_borrowed(&self) -> bool {
        matches!(self.data, Cow::Borrowed(_))
    }

    /// The bytes.
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
