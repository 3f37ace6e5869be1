//! [`Frame`]: the bytes of the pickle frame being filled.
//!
//! The encoder's hot path is appending a few bytes at a time (an opcode and its argument).
//! A `Vec<u8>` checks its capacity on every `push` and `extend_from_slice`, once for each
//! piece of an opcode, on top of the encoder's own frame-full test. Here one bounds test
//! does both: a piece that fits in the buffer is copied in, and one that does not takes
//! the slow path ([`Frame::extend`]), which grows the buffer. The buffer grows to at most
//! [`FRAME_MAX`] (unless one append needs more), so "fits in the buffer" also means "fits
//! in the frame".

use crate::write::encoder::FRAME_MAX;

/// First size of a frame's buffer: small pickles allocate little.
const FIRST_SIZE: usize = 256;

/// A growable byte buffer with a one-test append.
#[derive(Default)]
pub(crate) struct Frame {
    buf: Box<[u8]>,
    len: usize,
}

impl Frame {
    /// An empty frame with a small buffer.
    pub(crate) fn new() -> Frame {
        Frame {
            buf: vec![0; FIRST_SIZE].into_boxed_slice(),
            len: 0,
        }
    }

    /// Bytes in the frame.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame holds no bytes.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Empties the frame, keeping its buffer.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `bytes` if they fit in the buffer as it is; returns whether they did.
    #[inline(always)]
    pub(crate) fn try_put(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// Appends `op` then `arg` if both fit in the buffer as it is; returns whether they did.
    #[inline(always)]
    pub(crate) fn try_put_op(&mut self, op: u8, arg: &[u8]) -> bool {
        let end = self.len + 1 + arg.len();
        match self.buf.get_mut(self.len..end) {
            Some([first, rest @ ..]) => {
                *first = op;
                rest.copy_from_slice(arg);
                self.len = end;
                true
            }
            _ => false,
        }
    }

    /// Appends `op`, the one-byte length of `body`, then `body` (`SHORT_BINUNICODE` and
    /// its kin) if they fit in the buffer as it is; returns whether they did. `body` must be
    /// shorter than 256 bytes.
    #[inline(always)]
    pub(crate) fn try_put_short(&mut self, op: u8, body: &[u8]) -> bool {
        let end = self.len + 2 + body.len();
        match self.buf.get_mut(self.len..end) {
            Some([first, n, rest @ ..]) if body.len() < 256 => {
                *first = op;
                *n = body.len() as u8;
                rest.copy_from_slice(body);
                self.len = end;
                true
            }
            _ => false,
        }
    }

    /// Appends `bytes`, growing the buffer (to twice its size up to [`FRAME_MAX`], or to what
    /// they need).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if !self.try_put(bytes) {
            let need = self.len + bytes.len();
            let mut grown = vec![0; (self.buf.len() * 2).clamp(FIRST_SIZE, FRAME_MAX).max(need)];
            grown[..self.len].copy_from_slice(&self.buf[..self.len]);
            grown[self.len..need].copy_from_slice(bytes);
            self.buf = grown.into_boxed_slice();
            self.len = need;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_grow_and_clear() {
        let mut f = Frame::new();
        assert!(f.is_empty());
        assert!(f.try_put_op(1, &[2, 3]));
        assert!(!f.try_put(&[9; FIRST_SIZE]));
        assert_eq!(f.as_slice(), &[1, 2, 3]);
        f.extend(&[7; FIRST_SIZE]);
        assert_eq!(f.len(), FIRST_SIZE + 3);
        assert_eq!(f.as_slice()[..4], [1, 2, 3, 7]);
        assert!(f.try_put(&[8; 10]));
        assert_eq!(f.as_slice().last(), Some(&8));
        assert!(f.try_put_short(4, b"ab"));
        assert_eq!(f.as_slice()[f.len() - 4..], [4, 2, b'a', b'b']);
        assert!(!f.try_put_short(4, &[0; 300]));
        f.clear();
        assert!(f.is_empty());
        let mut big = Frame::new();
        big.extend(&[1; 40_000]);
        big.extend(&[2; 20_000]);
        assert_eq!(big.buf.len(), FRAME_MAX);
        let mut empty = Frame::default();
        assert!(!empty.try_put_op(1, &[]));
        empty.extend(&[5]);
        assert_eq!(empty.as_slice(), &[5]);
    }
}
