//! [`Frame`]: the pickle frame being filled, and, for a pickle built in memory, all the
//! bytes before it.
//!
//! The encoder's hot path is appending a few bytes at a time (an opcode and its argument).
//! A `Vec<u8>` checks its capacity on every `push` and `extend_from_slice`, once for each
//! piece of an opcode, on top of the encoder's own frame-full test. Here an append makes one
//! test, against the end of the zeroed room the buffer keeps ahead of the written bytes,
//! which never reaches past the open frame's limit: a piece that passes is copied in, and
//! one that does not takes the slow path (the encoder closes a full frame, or
//! [`Frame::extend`] grows the room).
//!
//! A frame is preceded by [`HEADER`] bytes of room for its `FRAME n` header, written when the
//! frame is closed (or the room given back, for a frame too small to be framed, as CPython
//! does). A pickle built in memory is built in place ([`Frame::keeping`]): closed frames and
//! the bytes written outside frames stay in the buffer, which becomes the pickle, so no byte
//! is copied from a frame into the output (CPython's pickler works the same way). For a
//! writer, the buffer holds one frame at a time.

use std::ops::Range;

use crate::opcodes::FRAME;
use crate::write::encoder::FRAME_MAX;

/// Room before a frame's first opcode for its `FRAME n` header (opcode and 8-byte length).
const HEADER: usize = 9;
/// First size of the buffer: small pickles allocate little.
const FIRST_SIZE: usize = 256;

/// The open frame (and, keeping, the output before it).
#[derive(Default)]
pub(crate) struct Frame {
    /// `..len` written; `len..` zeroes (or stale bytes), room for the open frame to grow
    /// into without a capacity test (the `Vec`'s own length is the room's end). The room
    /// never reaches past `limit`, so an append that fits in it fits in the frame.
    buf: Vec<u8>,
    /// End of the bytes written.
    len: usize,
    /// Where the open frame's first opcode goes, [`HEADER`] bytes after the output before it
    /// (kept or handed on).
    start: usize,
    /// `start + FRAME_MAX`: an opcode must end by here to join the open frame, and the
    /// room ends by here.
    limit: usize,
    /// The bytes before the open frame stay (a pickle built in memory).
    keep: bool,
}

impl Frame {
    /// A frame whose closed bytes are handed on ([`Frame::close`]) and dropped.
    pub(crate) fn passing() -> Frame {
        Frame::with_mode(false)
    }

    /// A frame building the whole pickle in its buffer ([`Frame::into_output`]).
    pub(crate) fn keeping() -> Frame {
        Frame::with_mode(true)
    }

    fn with_mode(keep: bool) -> Frame {
        Frame {
            buf: vec![0; FIRST_SIZE],
            len: HEADER,
            start: HEADER,
            limit: HEADER + FRAME_MAX,
            keep,
        }
    }

    /// Bytes in the open frame.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len - self.start
    }

    /// Whether the open frame holds no bytes.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == self.start
    }

    /// Appends `bytes` if they fit in the room as it is; returns whether they did.
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

    /// Appends `op` then `arg` if both fit in the room as it is; returns whether they did.
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
    /// its kin) if they fit in the room as it is; returns whether they did.
    /// `body` must be shorter than 256 bytes.
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

    /// Appends `bytes` to the open frame, growing the buffer. The caller keeps the frame
    /// within [`FRAME_MAX`] (closing it first when they would not fit).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        self.reserve(end);
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    /// Grows the room to at least `end` bytes: to twice its size (up to the end of the open
    /// frame, and within the capacity the buffer has when `end` fits in it), or to `end`.
    /// Only the new part is zeroed, and the `Vec` grows its capacity geometrically (in place
    /// where the allocator can). Staying within the capacity matters after a large payload:
    /// the buffer was grown to hold it and a few bytes more, and the opcodes after it must
    /// not double a buffer of that size.
    fn reserve(&mut self, end: usize) {
        if end <= self.buf.len() {
            return;
        }
        let mut room = (self.buf.len() * 2).clamp(FIRST_SIZE, self.limit.max(FIRST_SIZE));
        if end <= self.buf.capacity() {
            room = room.min(self.buf.capacity());
        }
        self.buf.resize(room.max(end), 0);
    }

    /// Makes room for `extra` more bytes written outside frames after the open frame is
    /// closed, at once, without zeroing it (before a large payload): huge-page backed when
    /// large (see `crate::alloc`).
    pub(crate) fn reserve_outside(&mut self, extra: usize) {
        self.buf.truncate(self.len);
        let need = self.len.saturating_add(extra).saturating_add(HEADER);
        if self.buf.capacity() < need {
            let mut grown = crate::alloc::large_vec(need);
            grown.extend_from_slice(&self.buf);
            self.buf = grown;
        }
    }

    /// Closes the open frame: `framed` writes its `FRAME n` header in the room before it,
    /// otherwise the room is given back. Returns where the closed bytes are, for the caller
    /// to hand on before [`Frame::reopen`].
    pub(crate) fn close(&mut self, framed: bool) -> Range<usize> {
        let from = self.start - HEADER;
        if framed {
            let n = (self.len - self.start) as u64;
            self.buf[from] = FRAME;
            self.buf[from + 1..self.start].copy_from_slice(&n.to_le_bytes());
        } else {
            self.buf.copy_within(self.start..self.len, from);
            self.len -= HEADER;
        }
        from..self.len
    }

    /// The buffer's bytes in `range` (from [`Frame::close`]).
    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Opens the next frame after a [`Frame::close`]: after the kept bytes, or at the buffer's
    /// start when they were handed on.
    pub(crate) fn reopen(&mut self) {
        if !self.keep {
            self.len = 0;
        }
        let start = self.len + HEADER;
        self.start = start;
        self.len = start;
        self.limit = start + FRAME_MAX;
        // Room for the header only: the frame's room grows as opcodes need it (a payload
        // written outside frames, chunk by chunk, must not zero a frame's worth after each).
        if self.buf.len() < start {
            self.buf.resize(start, 0);
        }
    }

    /// Keeps `bytes` written outside frames (the open frame must be empty): a pickle built
    /// in memory only.
    pub(crate) fn put_outside(&mut self, bytes: &[u8]) {
        self.len = self.start - HEADER;
        // Appended past the written bytes as to any `Vec`: a large payload is copied once,
        // with no zeroing pass before it.
        self.buf.truncate(self.len);
        self.buf.extend_from_slice(bytes);
        self.len = self.buf.len();
        self.reopen();
    }

    /// The pickle built in memory: the bytes before the open frame (close it first).
    pub(crate) fn into_output(self) -> Vec<u8> {
        let mut out = self.buf;
        out.truncate(self.start.saturating_sub(HEADER));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_grow_and_stop_at_the_frame_limit() {
        let mut f = Frame::passing();
        assert!(f.is_empty());
        assert!(f.try_put_op(1, &[2, 3]));
        assert!(!f.try_put(&[9; FIRST_SIZE]));
        f.extend(&[7; FIRST_SIZE]);
        assert_eq!(f.len(), FIRST_SIZE + 3);
        assert!(f.try_put(&[8; 10]));
        assert!(f.try_put_short(4, b"ab"));
        assert!(!f.try_put_short(4, &[0; 300]));
        let closed = f.close(false);
        let bytes = f.bytes(closed).to_vec();
        assert_eq!(bytes.len(), FIRST_SIZE + 17);
        assert_eq!(bytes[..4], [1, 2, 3, 7]);
        assert_eq!(bytes[bytes.len() - 4..], [4, 2, b'a', b'b']);
        f.reopen();
        assert!(f.is_empty());
        // A frame takes at most FRAME_MAX bytes, whatever the buffer holds.
        f.extend(&[1; FRAME_MAX - 2]);
        f.extend(&[2]);
        assert!(f.try_put(&[2]));
        assert!(!f.try_put(&[3]));
        assert!(!f.try_put_op(3, &[]));
        assert!(!f.try_put_short(3, &[]));
        let closed = f.close(true);
        let head = f.bytes(closed.clone())[..HEADER].to_vec();
        assert_eq!(head[0], FRAME);
        assert_eq!(
            u64::from_le_bytes(head[1..].try_into().unwrap()),
            FRAME_MAX as u64
        );
        assert_eq!(closed.len(), HEADER + FRAME_MAX);
        f.reopen();
        // A writer's buffer holds one frame: it never grows past one.
        assert_eq!(f.buf.len(), HEADER + FRAME_MAX);
    }

    #[test]
    fn keeping_builds_the_output_in_place() {
        let mut f = Frame::keeping();
        f.put_outside(&[0x80, 5]);
        // Past bytes written outside frames the room is the header's only: the slow path
        // grows it.
        assert!(!f.try_put(&[1, 2, 3, 4, 5]));
        f.extend(&[1, 2, 3, 4, 5]);
        f.close(true);
        f.reopen();
        assert!(f.try_put(&[6]));
        f.close(false);
        f.reopen();
        f.put_outside(&[9; 1000]);
        let out = f.into_output();
        let mut want = vec![0x80, 5, FRAME, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6];
        want.extend_from_slice(&[9; 1000]);
        assert_eq!(out, want);
        let mut empty = Frame::default();
        assert!(!empty.try_put_op(1, &[]));
    }
}
