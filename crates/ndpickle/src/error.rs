//! Errors, one enum per direction: [`EncodeError`] for writing, [`DecodeError`] for reading.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::opcodes;

/// A size or bounds problem found by the checked arithmetic on untrusted sizes (module `wire`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A computed size does not fit in the machine's integers.
    #[error("{what} overflows")]
    Overflow {
        /// The quantity that overflowed.
        what: &'static str,
    },
    /// The input ends before a length-prefixed item does.
    #[error("{what} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The item being read.
        what: &'static str,
        /// Bytes the item needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
}

/// An I/O failure on a named file, carried inside an [`io::Error`] of the same kind (see
/// [`PathIoError::wrap`]), so that callers can report the file and the OS error code.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PathIoError {
    /// The file.
    pub path: PathBuf,
    /// The failure, with its OS error code.
    pub source: io::Error,
}

impl PathIoError {
    /// `e`, of the same kind, with `path` in its message and in a [`PathIoError`] inside.
    pub fn wrap(e: io::Error, path: &Path) -> io::Error {
        io::Error::new(
            e.kind(),
            PathIoError {
                path: path.to_path_buf(),
                source: e,
            },
        )
    }

    /// The [`PathIoError`] inside `e`, if `e` was made by [`PathIoError::wrap`].
    pub fn of(e: &io::Error) -> Option<&PathIoError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// Why writing a pickle failed.
///
/// Not `#[non_exhaustive]`: the bindings map every variant to a Python exception with an
/// exhaustive `match`, so that a new variant cannot go unmapped.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The protocol asked for is not one this writer produces (2 to 5).
    #[error("protocol {0} is not supported; use 2, 3, 4 or 5")]
    UnsupportedProtocol(u8),
    /// Out-of-band buffers exist only from protocol 5 on.
    #[error("out-of-band buffers need protocol 5, not {0}")]
    OutOfBandNeedsProtocol5(u8),
    /// Something needs a newer protocol than the one chosen.
    #[error("{what} needs protocol {min} or higher, not {protocol}")]
    NeedsProtocol {
        /// What needs it.
        what: &'static str,
        /// The lowest protocol that can carry it.
        min: u8,
        /// The protocol in use.
        protocol: u8,
    },
    /// The array layout cannot be expressed in the chosen numpy form or layout policy.
    #[error("layout not possible: {0}")]
    Layout(String),
    /// The dtype cannot be written in the chosen form.
    #[error("dtype not supported here: {0}")]
    UnsupportedDtype(String),
    /// An option value is out of range or options contradict each other.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A size computation overflowed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A compression codec failed.
    #[error("compression failed: {0}")]
    Codec(String),
    /// Writing to the destination failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// A value's `serde::Serialize` implementation failed, or produced something Python
    /// cannot hold (a list as a dict key).
    #[error("{0}")]
    Serde(String),
}

/// What went wrong while reading a pickle (see [`DecodeError`] for where).
///
/// Not `#[non_exhaustive]`, for the same reason as [`EncodeError`]; [`DecodeErrorKind::name`]
/// names each variant.
#[derive(Debug, thiserror::Error)]
pub enum DecodeErrorKind {
    /// A size or bounds problem.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The input ended before a `STOP` opcode.
    #[error("pickle data was truncated")]
    UnexpectedEof,
    /// A byte that is no pickle opcode.
    #[error("invalid opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    /// `PROTO` names a protocol newer than 5.
    #[error("unsupported pickle protocol {0}")]
    UnsupportedProtocol(u8),
    /// An opcode that is valid pickle but refused by this reader.
    #[error("{0}")]
    Refused(String),
    /// An opcode needed more stack items than there are.
    #[error("stack underflow")]
    StackUnderflow,
    /// An opcode needed a mark and none is set.
    #[error("could not find MARK")]
    MissingMark,
    /// A memo index that was never stored.
    #[error("memo key {0} not found")]
    MissingMemo(u64),
    /// A global outside the allow-list.
    #[error("global '{module}.{name}' is not allowed")]
    ForbiddenGlobal {
        /// The global's module.
        module: String,
        /// The global's qualified name.
        name: String,
    },
    /// A value of the wrong type for what the opcode or reconstructor needs.
    #[error("expected {expected}, found {found}")]
    Type {
        /// What was needed.
        expected: String,
        /// What was there.
        found: String,
    },
    /// Malformed text or literal content.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The kind of item.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// An array description that cannot be right (dtype, shape, strides, buffer size).
    #[error("bad array: {0}")]
    BadArray(String),
    /// A dtype that exists but cannot be read into data (object, unknown ml_dtypes type...).
    #[error("unsupported dtype: {0}")]
    UnsupportedDtype(String),
    /// An out-of-band buffer was asked for but none (or no more) were supplied.
    #[error("pickle stream refers to out-of-band data but no buffers were given")]
    MissingBuffer,
    /// A configured resource limit was hit.
    #[error("limit exceeded: {limit} (limit {max})")]
    Limit {
        /// Which limit.
        limit: &'static str,
        /// Its configured value.
        max: u64,
    },
    /// Decompressing a buffer failed.
    #[error("decompression failed: {0}")]
    Codec(String),
    /// The data is fine but the caller asked for another element type or layout.
    #[error("cannot view as requested: {0}")]
    View(String),
    /// Reading from the source failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// A [`crate::ReadOptions`] value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Bytes follow the `STOP` opcode and [`crate::ReadOptions::strict`] refuses them (a
    /// second, stacked pickle is how scanners get bypassed).
    #[error("{0} bytes follow the STOP opcode")]
    TrailingData(u64),
    /// The pickle was read but does not fit the Rust type it is deserialized into.
    #[error("{}{}{message}", path, if path.is_empty() { "" } else { ": " })]
    Serde {
        /// Where in the value: `model.layers[2].weights`; empty for the top level.
        path: String,
        /// What does not fit.
        message: String,
    },
}

impl DecodeErrorKind {
    /// The variant's name (`"ForbiddenGlobal"`, `"Truncated"`...), as the bindings report it
    /// in `DecodeError.kind`; a size problem is named for its [`WireError`] variant.
    pub fn name(&self) -> &'static str {
        match self {
            DecodeErrorKind::Wire(WireError::Overflow { .. }) => "Overflow",
            DecodeErrorKind::Wire(WireError::Truncated { .. }) => "Truncated",
            DecodeErrorKind::UnexpectedEof => "UnexpectedEof",
            DecodeErrorKind::UnknownOpcode(_) => "UnknownOpcode",
            DecodeErrorKind::UnsupportedProtocol(_) => "UnsupportedProtocol",
            DecodeErrorKind::Refused(_) => "Refused",
            DecodeErrorKind::StackUnderflow => "StackUnderflow",
            DecodeErrorKind::MissingMark => "MissingMark",
            DecodeErrorKind::MissingMemo(_) => "MissingMemo",
            DecodeErrorKind::ForbiddenGlobal { .. } => "ForbiddenGlobal",
            DecodeErrorKind::Type { .. } => "Type",
            DecodeErrorKind::Invalid { .. } => "Invalid",
            DecodeErrorKind::BadArray(_) => "BadArray",
            DecodeErrorKind::UnsupportedDtype(_) => "UnsupportedDtype",
            DecodeErrorKind::MissingBuffer => "MissingBuffer",
            DecodeErrorKind::Limit { .. } => "Limit",
            DecodeErrorKind::Codec(_) => "Codec",
            DecodeErrorKind::View(_) => "View",
            DecodeErrorKind::Io(_) => "Io",
            DecodeErrorKind::InvalidOption(_) => "InvalidOption",
            DecodeErrorKind::TrailingData(_) => "TrailingData",
            DecodeErrorKind::Serde { .. } => "Serde",
        }
    }
}

/// An option value out of range, found when options are built ([`crate::ReadOptions`]'s
/// builder; [`crate::WriteOptions`]' report [`EncodeError::InvalidOption`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid option: {0}")]
pub struct OptionsError(pub String);

impl From<OptionsError> for DecodeError {
    fn from(e: OptionsError) -> DecodeError {
        DecodeError::new(DecodeErrorKind::InvalidOption(e.0))
    }
}

impl From<OptionsError> for EncodeError {
    fn from(e: OptionsError) -> EncodeError {
        EncodeError::InvalidOption(e.0)
    }
}

/// Why reading a pickle failed, and where: the byte offset and opcode, when known.
#[derive(Debug)]
pub struct DecodeError {
    /// Offset of the opcode being executed, from the start of the stream.
    pub offset: Option<u64>,
    /// The opcode being executed.
    pub opcode: Option<u8>,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error not tied to a stream position (e.g. a view of a decoded array).
    pub fn new(kind: impl Into<DecodeErrorKind>) -> DecodeError {
        DecodeError {
            offset: None,
            opcode: None,
            kind: kind.into(),
        }
    }

    /// The same error located at `offset` while running `opcode`.
    pub fn at(kind: impl Into<DecodeErrorKind>, offset: u64, opcode: u8) -> DecodeError {
        DecodeError {
            offset: Some(offset),
            opcode: Some(opcode),
            kind: kind.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.offset, self.opcode) {
            (Some(o), Some(op)) => write!(f, "at byte {o} ({}): {}", opcodes::name(op), self.kind),
            (Some(o), None) => write!(f, "at byte {o}: {}", self.kind),
            _ => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind)
    }
}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> DecodeError {
        DecodeError::new(DecodeErrorKind::Wire(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names() {
        let kinds = [
            DecodeErrorKind::Wire(WireError::Overflow { what: "x" }),
            DecodeErrorKind::Wire(WireError::Truncated {
                what: "x",
                needed: 2,
                available: 1,
            }),
            DecodeErrorKind::UnexpectedEof,
            DecodeErrorKind::UnknownOpcode(0xff),
            DecodeErrorKind::UnsupportedProtocol(9),
            DecodeErrorKind::Refused("x".into()),
            DecodeErrorKind::StackUnderflow,
            DecodeErrorKind::MissingMark,
            DecodeErrorKind::MissingMemo(1),
            DecodeErrorKind::ForbiddenGlobal {
                module: "os".into(),
                name: "system".into(),
            },
            DecodeErrorKind::Type {
                expected: "a".into(),
                found: "b".into(),
            },
            DecodeErrorKind::Invalid {
                what: "x",
                detail: "y".into(),
            },
            DecodeErrorKind::BadArray("x".into()),
            DecodeErrorKind::UnsupportedDtype("x".into()),
            DecodeErrorKind::MissingBuffer,
            DecodeErrorKind::Limit {
                limit: "depth",
                max: 1,
            },
            DecodeErrorKind::Codec("x".into()),
            DecodeErrorKind::View("x".into()),
            DecodeErrorKind::Io(io::Error::other("x")),
            DecodeErrorKind::InvalidOption("x".into()),
            DecodeErrorKind::TrailingData(1),
            DecodeErrorKind::Serde {
                path: String::new(),
                message: "x".into(),
            },
        ];
        let mut names: Vec<&str> = kinds.iter().map(DecodeErrorKind::name).collect();
        assert_eq!(names[9], "ForbiddenGlobal");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), kinds.len());
    }

    #[test]
    fn options_errors_convert_both_ways() {
        let e = crate::ReadOptions::builder()
            .max_depth(0)
            .build()
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid option: "), "{e}");
        let d = DecodeError::from(e.clone());
        assert_eq!(d.kind.name(), "InvalidOption");
        assert!(matches!(
            EncodeError::from(e),
            EncodeError::InvalidOption(_)
        ));
    }

    #[test]
    fn path_errors_keep_the_kind_and_code() {
        let e = PathIoError::wrap(io::Error::from_raw_os_error(2), Path::new("/x/y"));
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("/x/y: "), "{e}");
        let inner = PathIoError::of(&e).unwrap();
        assert_eq!(inner.source.raw_os_error(), Some(2));
        assert!(PathIoError::of(&io::Error::other("plain")).is_none());
    }
}
