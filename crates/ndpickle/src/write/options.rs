//! [`WriteOptions`]: protocol, numpy form, layout policy, read-only flag; validated when built.

use crate::codec::{CodecOptions, Compression};
use crate::error::EncodeError;
use crate::layout::{DEFAULT_SPAN_THRESHOLD, LayoutPolicy};
use crate::opcodes::HIGHEST_PROTOCOL;

/// Raw bytes per chunk of a large in-band compressed buffer (64 MiB), the default of
/// [`WriteOptionsBuilder::compress_chunk`]: buffers up to this size are one
/// `ndpickle._decompress` frame, larger ones are written chunk by chunk (see `write::chunked`).
pub const COMPRESS_CHUNK: usize = 64 << 20;

/// Which reduce form numpy arrays take (DESIGN §3.2–3.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NumpyForm {
    /// `numpy.ndarray(shape, dtype, buffer, offset, strides, order)` with
    /// `numpy.dtype(spec, False, True)`: public constructors only, loads silently on numpy
    /// 1.16+ and 2.x, carries strides so that spans and broadcasts need no copy.
    #[default]
    Portable,
    /// numpy 1.x's own forms under `numpy.core.*`: `_frombuffer` at protocol 5,
    /// `_reconstruct` + `BUILD` below. numpy 2.x loads them, with its own
    /// `DeprecationWarning` for `numpy.core.numeric` at protocol 5.
    NumpyV1,
    /// numpy 2.x's own forms under `numpy._core.*`. numpy 1.x cannot load them.
    NumpyV2,
}

impl NumpyForm {
    /// Whether this is one of numpy's own (native) forms.
    pub fn is_native(self) -> bool {
        self != NumpyForm::Portable
    }

    /// The numpy core package the native form names (`numpy.core` or `numpy._core`).
    pub fn core_module(self) -> &'static str {
        match self {
            NumpyForm::NumpyV2 => "numpy._core",
            _ => "numpy.core",
        }
    }
}

/// How a pickle is written. Build with [`WriteOptions::builder`]; `Default` is protocol 5,
/// portable form, `Auto` layout, writable buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOptions {
    pub(crate) protocol: u8,
    pub(crate) form: NumpyForm,
    pub(crate) layout: LayoutPolicy,
    pub(crate) span_threshold: f64,
    pub(crate) readonly: bool,
    pub(crate) align: Option<usize>,
    pub(crate) compression: Compression,
    pub(crate) codec_options: CodecOptions,
    pub(crate) compress_chunk: usize,
    pub(crate) fsync: bool,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            protocol: HIGHEST_PROTOCOL,
            form: NumpyForm::Portable,
            layout: LayoutPolicy::Auto,
            span_threshold: DEFAULT_SPAN_THRESHOLD,
            readonly: false,
            align: None,
            compression: Compression::Off,
            codec_options: CodecOptions::default(),
            compress_chunk: COMPRESS_CHUNK,
            fsync: true,
        }
    }
}

impl WriteOptions {
    /// A builder starting from the defaults.
    pub fn builder() -> WriteOptionsBuilder {
        WriteOptionsBuilder {
            opts: WriteOptions::default(),
        }
    }

    /// The pickle protocol.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// The numpy form.
    pub fn numpy_form(&self) -> NumpyForm {
        self.form
    }

    /// The layout policy for non-contiguous arrays.
    pub fn layout(&self) -> LayoutPolicy {
        self.layout
    }

    /// Used-over-span ratio from which `Auto` sends a span instead of packing.
    pub fn span_threshold(&self) -> f64 {
        self.span_threshold
    }

    /// Whether array buffers are marked read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// Alignment of large in-band payloads, if any (files).
    pub fn align(&self) -> Option<usize> {
        self.align
    }

    /// Per-buffer compression of array data.
    pub fn compression(&self) -> &Compression {
        &self.compression
    }

    /// Raw bytes per chunk of in-band compressed data.
    pub fn compress_chunk(&self) -> usize {
        self.compress_chunk
    }

    /// Whether [`crate::to_file`] flushes the file to the device before renaming it over
    /// the target.
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    /// Block size and threads of the codecs.
    pub fn codec_options(&self) -> &CodecOptions {
        &self.codec_options
    }
}

/// Builder of [`WriteOptions`]; [`WriteOptionsBuilder::build`] validates.
#[derive(Clone, Debug)]
pub struct WriteOptionsBuilder {
    opts: WriteOptions,
}

impl WriteOptionsBuilder {
    /// Pickle protocol, 2 to 5 (default 5).
    pub fn protocol(mut self, protocol: u8) -> Self {
        self.opts.protocol = protocol;
        self
    }

    /// numpy reduce form (default [`NumpyForm::Portable`]).
    pub fn numpy_form(mut self, form: NumpyForm) -> Self {
        self.opts.form = form;
        self
    }

    /// Layout policy for non-contiguous arrays (default [`LayoutPolicy::Auto`]).
    pub fn layout(mut self, layout: LayoutPolicy) -> Self {
        self.opts.layout = layout;
        self
    }

    /// Used-over-span ratio from which `Auto` sends spans (default 0.5; in `(0, 1]`).
    pub fn span_threshold(mut self, threshold: f64) -> Self {
        self.opts.span_threshold = threshold;
        self
    }

    /// Mark array buffers read-only (default false: arrays load writable).
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.opts.readonly = readonly;
        self
    }

    /// Start large in-band payloads at offsets that are multiples of `align` bytes (a power
    /// of two up to 4096), padding with `SHORT_BINBYTES n <pad> POP`. Used for files that are
    /// memory-mapped back.
    pub fn align(mut self, align: Option<usize>) -> Self {
        self.opts.align = align;
        self
    }

    /// Whether [`crate::to_file`] flushes the new file (and its directory entry) to the
    /// device before it replaces the target (default `true`): without it a power loss
    /// right after the write can leave an empty or partial file under the target's name.
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.opts.fsync = fsync;
        self
    }

    /// Compress array buffers (default [`Compression::Off`]). Out-of-band buffers then carry
    /// their [`crate::codec::FrameInfo`]; in-band data becomes
    /// `ndpickle._decompress(header, frame, writable)`, which needs ndpickle to load.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.opts.compression = compression;
        self
    }

    /// Codec block size and threads (default: 1 MiB blocks, one thread per core up to 8).
    pub fn codec_options(mut self, options: CodecOptions) -> Self {
        self.opts.codec_options = options;
        self
    }

    /// Raw bytes per chunk of in-band compressed data (default
    /// [`crate::write::COMPRESS_CHUNK`], 64 MiB; at least 1). A larger buffer is compressed
    /// and written chunk by chunk (`ndpickle._decompress_into` calls, see the
    /// `write::chunked` module docs), so that writer and reader hold one compressed chunk at a
    /// time.
    pub fn compress_chunk(mut self, bytes: usize) -> Self {
        self.opts.compress_chunk = bytes;
        self
    }

    /// Validates and returns the options.
    pub fn build(self) -> Result<WriteOptions, EncodeError> {
        let o = self.opts;
        if !(2..=HIGHEST_PROTOCOL).contains(&o.protocol) {
            return Err(EncodeError::UnsupportedProtocol(o.protocol));
        }
        if !(o.span_threshold > 0.0 && o.span_threshold <= 1.0) {
            return Err(EncodeError::InvalidOption(format!(
                "span threshold must be in (0, 1], not {}",
                o.span_threshold
            )));
        }
        if o.form.is_native() && o.layout == LayoutPolicy::AlwaysSpan {
            return Err(EncodeError::Layout(
                "numpy's native forms carry no strides: AlwaysSpan needs the portable form".into(),
            ));
        }
        if o.compress_chunk == 0 {
            return Err(EncodeError::InvalidOption(
                "compress_chunk must be at least 1 byte".into(),
            ));
        }
        if let Some(a) = o.align
            && (!a.is_power_of_two() || a > 4096)
        {
            return Err(EncodeError::InvalidOption(format!(
                "alignment must be a power of two up to 4096, not {a}"
            )));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(WriteOptions::builder().build().is_ok());
        for p in [0, 1, 6] {
            let e = WriteOptions::builder().protocol(p).build().unwrap_err();
            assert!(matches!(e, EncodeError::UnsupportedProtocol(x) if x == p));
        }
        assert!(WriteOptions::builder().span_threshold(0.0).build().is_err());
        assert!(
            WriteOptions::builder()
                .span_threshold(f64::NAN)
                .build()
                .is_err()
        );
        assert!(WriteOptions::builder().align(Some(48)).build().is_err());
        let e = WriteOptions::builder()
            .numpy_form(NumpyForm::NumpyV1)
            .layout(LayoutPolicy::AlwaysSpan)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("AlwaysSpan"), "{e}");
    }
}
