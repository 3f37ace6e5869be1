//! [`ReadOptions`]: resource limits, allow-list additions, opaque nodes and the
//! persistent-id handler, built and validated by [`ReadOptionsBuilder`].

use std::fmt;
use std::sync::Arc;

use crate::error::OptionsError;
use crate::value::{Global, Value};

/// Resolves a persistent id (`PERSID`/`BINPERSID`) to a value; an `Err` message aborts reading.
pub type PersistentIdHandler = Arc<dyn Fn(&Value) -> Result<Value, String> + Send + Sync>;

/// Default for [`ReadOptions::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 1_000;
/// Default for [`ReadOptions::max_memo_entries`].
pub const DEFAULT_MAX_MEMO_ENTRIES: usize = 1_000_000;
/// Default for [`ReadOptions::max_copied_bytes`]: 256 MiB.
pub const DEFAULT_MAX_COPIED_BYTES: u64 = 256 << 20;
/// Unless [`ReadOptionsBuilder::max_alloc_bytes`] is set, a read may allocate
/// [`DEFAULT_ALLOC_BASE`] plus [`DEFAULT_ALLOC_PER_INPUT_BYTE`] bytes per byte of input (the
/// pickle and its out-of-band buffers): enough for every copy an honest pickle asks for
/// (writable copies of in-band data, decompressed buffers of ordinary compression ratios),
/// while a 55 KB decompression bomb stops at a few hundred MiB instead of gigabytes.
pub const DEFAULT_ALLOC_BASE: u64 = 256 << 20;
/// See [`DEFAULT_ALLOC_BASE`].
pub const DEFAULT_ALLOC_PER_INPUT_BYTE: u64 = 4;
/// Most bytes [`crate::from_reader`] reads of a stream when no allocation limit is set: 4 GiB.
pub const DEFAULT_MAX_ALLOC_BYTES: u64 = 4 << 30;
/// Default for [`ReadOptions::max_decompressed_bytes`]: 4 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// How a pickle is read: limits, which globals are accepted and how unknown ones are kept.
///
/// Build one with [`ReadOptions::builder`]; [`ReadOptions::default`] has safe limits,
/// refuses every global outside the built-in allow-list and refuses persistent ids.
#[derive(Clone)]
pub struct ReadOptions {
    max_depth: usize,
    max_memo_entries: usize,
    max_copied_bytes: u64,
    max_alloc_bytes: Option<u64>,
    max_decompressed_bytes: u64,
    allowed: Vec<Global>,
    opaque: bool,
    strict: bool,
    fix_imports: bool,
    persistent_id: Option<PersistentIdHandler>,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            max_depth: DEFAULT_MAX_DEPTH,
            max_memo_entries: DEFAULT_MAX_MEMO_ENTRIES,
            max_copied_bytes: DEFAULT_MAX_COPIED_BYTES,
            max_alloc_bytes: None,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            allowed: Vec::new(),
            opaque: false,
            strict: false,
            fix_imports: true,
            persistent_id: None,
        }
    }
}

impl fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOptions")
            .field("max_depth", &self.max_depth)
            .field("max_memo_entries", &self.max_memo_entries)
            .field("max_copied_bytes", &self.max_copied_bytes)
            .field("max_alloc_bytes", &self.max_alloc_bytes)
            .field("max_decompressed_bytes", &self.max_decompressed_bytes)
            .field("allowed", &self.allowed)
            .field("opaque", &self.opaque)
            .field("strict", &self.strict)
            .field("fix_imports", &self.fix_imports)
            .field("persistent_id", &self.persistent_id.is_some())
            .finish()
    }
}

impl ReadOptions {
    /// A builder starting from the defaults.
    pub fn builder() -> ReadOptionsBuilder {
        ReadOptionsBuilder {
            opts: ReadOptions::default(),
        }
    }

    /// Deepest nesting of containers and objects in the result.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Most memo entries a stream may create.
    pub fn max_memo_entries(&self) -> usize {
        self.max_memo_entries
    }

    /// Most bytes of values duplicated because the stream refers to them more than once
    /// (`GET`/`DUP` of memoised containers and strings become copies in the value tree).
    pub fn max_copied_bytes(&self) -> u64 {
        self.max_copied_bytes
    }

    /// Most bytes the reader allocates for the stream's values (and, for
    /// [`crate::from_reader`], for the stream itself), as set; when it is not set, a read
    /// of `n` input bytes may allocate [`ReadOptions::alloc_limit`]`(n)`, and this returns
    /// [`DEFAULT_MAX_ALLOC_BYTES`].
    pub fn max_alloc_bytes(&self) -> u64 {
        self.max_alloc_bytes.unwrap_or(DEFAULT_MAX_ALLOC_BYTES)
    }

    /// The allocation limit of a read of `input_len` bytes (pickle and out-of-band buffers):
    /// the configured [`ReadOptionsBuilder::max_alloc_bytes`], or [`DEFAULT_ALLOC_BASE`] +
    /// [`DEFAULT_ALLOC_PER_INPUT_BYTE`] × `input_len`.
    pub fn alloc_limit(&self, input_len: u64) -> u64 {
        self.max_alloc_bytes.unwrap_or_else(|| {
            DEFAULT_ALLOC_BASE
                .saturating_add(input_len.saturating_mul(DEFAULT_ALLOC_PER_INPUT_BYTE))
        })
    }

    /// These options with the allocation limit fixed at [`ReadOptions::alloc_limit`]`(input_len)`.
    pub(crate) fn for_input(&self, input_len: u64) -> ReadOptions {
        ReadOptions {
            max_alloc_bytes: Some(self.alloc_limit(input_len)),
            ..self.clone()
        }
    }

    /// Whether [`ReadOptionsBuilder::max_alloc_bytes`] was set.
    pub(crate) fn alloc_limit_is_set(&self) -> bool {
        self.max_alloc_bytes.is_some()
    }

    /// Most bytes one compressed buffer (an in-band `ndpickle._decompress` call or an
    /// out-of-band [`crate::InBuffer`] with a frame) may decompress to; decompressed bytes
    /// also count against [`ReadOptions::max_alloc_bytes`].
    pub fn max_decompressed_bytes(&self) -> u64 {
        self.max_decompressed_bytes
    }

    /// Globals accepted in addition to the built-in allow-list; they are kept as opaque
    /// [`Value::Global`] / [`Value::Object`] nodes.
    pub fn allowed_globals(&self) -> &[Global] {
        &self.allowed
    }

    /// Whether unknown globals become opaque nodes instead of errors.
    pub fn opaque_globals(&self) -> bool {
        self.opaque
    }

    /// Whether bytes after the `STOP` opcode are refused ([`crate::DecodeErrorKind::TrailingData`])
    /// instead of ignored as `pickle.loads` ignores them. Off by default.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Whether Python 2 module names (`__builtin__`, `copy_reg`) are read as their Python 3
    /// homes, as `pickle.loads(fix_imports=True)` does. On by default.
    pub fn fix_imports(&self) -> bool {
        self.fix_imports
    }

    /// The persistent-id handler, if any.
    pub fn persistent_id_handler(&self) -> Option<&PersistentIdHandler> {
        self.persistent_id.as_ref()
    }
}

/// Builds [`ReadOptions`]; [`ReadOptionsBuilder::build`] validates the combination.
#[derive(Debug, Clone)]
pub struct ReadOptionsBuilder {
    opts: ReadOptions,
}

impl ReadOptionsBuilder {
    /// Deepest nesting of containers and objects (at least 1).
    pub fn max_depth(mut self, n: usize) -> Self {
        self.opts.max_depth = n;
        self
    }

    /// Most memo entries (at least 1).
    pub fn max_memo_entries(mut self, n: usize) -> Self {
        self.opts.max_memo_entries = n;
        self
    }

    /// Most bytes duplicated through shared references (may be 0: then any shared
    /// container or string that must be copied is an error).
    pub fn max_copied_bytes(mut self, n: u64) -> Self {
        self.opts.max_copied_bytes = n;
        self
    }

    /// Most bytes allocated for values (at least 1 KiB), whatever the input's size.
    pub fn max_alloc_bytes(mut self, n: u64) -> Self {
        self.opts.max_alloc_bytes = Some(n);
        self
    }

    /// Most bytes one compressed buffer may decompress to (at least 1).
    pub fn max_decompressed_bytes(mut self, n: u64) -> Self {
        self.opts.max_decompressed_bytes = n;
        self
    }

    /// Accepts `module.name` as an opaque node (never called, never imported by ndpickle).
    pub fn allow_global(mut self, module: impl Into<String>, name: impl Into<String>) -> Self {
        self.opts.allowed.push(Global::new(module, name));
        self
    }

    /// Keeps unknown globals (and objects whose data cannot be read, such as object
    /// arrays) as opaque [`Value::Global`] / [`Value::Object`] nodes instead of failing.
    pub fn opaque_globals(mut self, yes: bool) -> Self {
        self.opts.opaque = yes;
        self
    }

    /// Refuses bytes after the `STOP` opcode (off by default, as in `pickle.loads`).
    pub fn strict(mut self, yes: bool) -> Self {
        self.opts.strict = yes;
        self
    }

    /// Reads Python 2 module names as their Python 3 homes (on by default, as in
    /// `pickle.loads`); off, they are unknown modules.
    pub fn fix_imports(mut self, yes: bool) -> Self {
        self.opts.fix_imports = yes;
        self
    }

    /// Resolves `PERSID`/`BINPERSID` through `handler` instead of refusing them.
    pub fn persistent_id<F>(mut self, handler: F) -> Self
    where
        F: Fn(&Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.opts.persistent_id = Some(Arc::new(handler));
        self
    }

    /// Validates and returns the options.
    pub fn build(self) -> Result<ReadOptions, OptionsError> {
        let o = &self.opts;
        let invalid = |m: String| Err(OptionsError(m));
        if o.max_depth == 0 {
            return invalid("max_depth must be at least 1".into());
        }
        if o.max_memo_entries == 0 {
            return invalid("max_memo_entries must be at least 1".into());
        }
        if let Some(n) = o.max_alloc_bytes.filter(|&n| n < 1024) {
            return invalid(format!("max_alloc_bytes must be at least 1024, not {n}"));
        }
        if o.max_decompressed_bytes == 0 {
            return invalid("max_decompressed_bytes must be at least 1".into());
        }
        for g in &o.allowed {
            if !crate::value::valid_dotted(&g.module) || !crate::value::valid_dotted(&g.name) {
                return invalid(format!("'{g}' is not a valid global name"));
            }
        }
        Ok(self.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates() {
        assert!(ReadOptions::builder().max_depth(0).build().is_err());
        assert!(ReadOptions::builder().max_memo_entries(0).build().is_err());
        assert!(ReadOptions::builder().max_alloc_bytes(10).build().is_err());
        assert!(
            ReadOptions::builder()
                .max_decompressed_bytes(0)
                .build()
                .is_err()
        );
        assert!(
            ReadOptions::builder()
                .allow_global("os", "")
                .build()
                .is_err()
        );
        assert!(
            ReadOptions::builder()
                .allow_global("a..b", "c")
                .build()
                .is_err()
        );
        let o = ReadOptions::builder()
            .max_depth(5)
            .allow_global("mymod", "Thing")
            .opaque_globals(true)
            .persistent_id(|v| Ok(v.clone()))
            .build()
            .unwrap();
        assert_eq!(o.max_depth(), 5);
        assert!(o.opaque_globals());
        assert!(o.persistent_id_handler().is_some());
        assert!(format!("{o:?}").contains("mymod"));
    }
}
