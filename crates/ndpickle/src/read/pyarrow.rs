//! pyarrow reconstruction shapes, kept as [`crate::Object`] nodes (callable + arguments) for
//! the Arrow conversion. Only their outline is checked here: `_restore_array` takes one
//! 6- or 7-tuple `(type, length, null_count, offset, buffers, children[, dictionary])`,
//! `py_buffer` one bytes-like.

use crate::error::DecodeErrorKind;
use crate::value::Value;

use super::args::{CallParts, arity, buffer_of, int_of, refused, type_err};

/// Checks the outline of a pyarrow call and keeps it as an object node.
pub(crate) fn object(p: CallParts) -> Result<Value, DecodeErrorKind> {
    let name = p.global.name.as_str();
    match name {
        "_restore_array" => {
            arity(&p, 1, 1)?;
            let Value::Tuple(t) = &p.args[0] else {
                return Err(type_err(
                    "an array data tuple for _restore_array",
                    &p.args[0],
                ));
            };
            if t.len() != 6 && t.len() != 7 {
                return Err(refused(format!(
                    "_restore_array data has {} items, not 6 or 7",
                    t.len()
                )));
            }
            for (i, what) in [(1, "array length"), (2, "null count"), (3, "array offset")] {
                int_of(&t[i], what)?;
            }
            for (i, what) in [(4, "a list of buffers"), (5, "a list of children")] {
                if !matches!(t[i], Value::List(_) | Value::Tuple(_)) {
                    return Err(type_err(what, &t[i]));
                }
            }
        }
        "py_buffer" => {
            arity(&p, 1, 1)?;
            if buffer_of(&p.args[0]).is_none() {
                return Err(type_err("bytes for py_buffer", &p.args[0]));
            }
        }
        "type_for_alias" => {
            arity(&p, 1, 1)?;
            if p.args[0].as_str().is_none() {
                return Err(type_err("a str for type_for_alias", &p.args[0]));
            }
        }
        _ => {}
    }
    p.into_object()
}
