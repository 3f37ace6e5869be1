//! Matching recorded calls against the known reconstruction shapes.

use crate::error::DecodeErrorKind;
use crate::value::Value;

use super::allow::Known;
use super::args::{CallParts, refused};
use super::options::ReadOptions;
use super::{builtins, numpy, pyarrow};

/// Interprets one call.
pub(crate) fn dispatch(p: CallParts, opts: &ReadOptions) -> Result<Value, DecodeErrorKind> {
    match p.known {
        Known::NpReconstruct => numpy::reconstruct(p, opts),
        Known::NpNdarray => numpy::ndarray_new(p, opts),
        Known::NpDtype => {
            p.plain(true)?;
            numpy::dtype_call(&p.args, p.state.as_ref()).map(Value::DType)
        }
        Known::NpFrombuffer => numpy::frombuffer(p, opts),
        Known::NpScalar => numpy::scalar(p, opts),
        Known::Pyarrow => pyarrow::object(p),
        Known::Opaque => p.into_object(),
        Known::MlDtype(..) if opts.opaque_globals() => p.into_object(),
        Known::MlDtype(..) => Err(refused(format!("calling {} is not supported", p.global))),
        _ => builtins::call(p, opts),
    }
}
