//! The layout decision of DESIGN §3.4: what bytes travel for one array.
//!
//! | array | what is sent |
//! |---|---|
//! | C- or F-contiguous | the memory itself, zero copies |
//! | strided, dense span (used / span bytes ≥ threshold) | the span, zero copies, with strides |
//! | zero strides (broadcast) | only the non-broadcast slice, strides keep the zeros |
//! | strided, sparse span | one packing copy into a new contiguous buffer |
//!
//! Broadcast axes need no special case: an axis with stride zero adds nothing to the span, so
//! the span of a broadcast view is exactly its non-broadcast slice.

use crate::array::{c_strides, f_strides, is_contiguous};
use crate::error::{EncodeError, WireError};
use crate::wire;

/// The byte range an array touches inside its buffer, relative to element `[0, ..., 0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Lowest byte offset touched, relative to element zero (zero or negative).
    pub low: isize,
    /// One past the highest byte touched, relative to element zero.
    pub high: isize,
}

impl Extent {
    /// The extent of an array of `shape` with byte `strides` and `itemsize`-byte elements;
    /// `None` for an empty array (it touches nothing) or on overflow.
    pub fn of(
        shape: &[usize],
        strides: &[isize],
        itemsize: usize,
    ) -> Result<Option<Extent>, WireError> {
        if shape.contains(&0) {
            return Ok(None);
        }
        let mut low: isize = 0;
        let mut high: isize = wire::isize_from(itemsize, "element size")?;
        for (&d, &s) in shape.iter().zip(strides) {
            let last = wire::isize_from(d - 1, "array dimension")?;
            let reach = last.checked_mul(s).ok_or(WireError::Overflow {
                what: "array extent",
            })?;
            if reach < 0 {
                low = low.checked_add(reach).ok_or(WireError::Overflow {
                    what: "array extent",
                })?;
            } else {
                high = high.checked_add(reach).ok_or(WireError::Overflow {
                    what: "array extent",
                })?;
            }
        }
        Ok(Some(Extent { low, high }))
    }

    /// Number of bytes from the lowest to one past the highest touched byte.
    pub fn len(&self) -> usize {
        (self.high - self.low) as usize
    }

    /// Whether the extent covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.high <= self.low
    }
}

/// How non-contiguous arrays are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LayoutPolicy {
    /// Send the span when it is dense enough (see [`DEFAULT_SPAN_THRESHOLD`]), else pack.
    #[default]
    Auto,
    /// Always pack non-contiguous arrays into a new contiguous buffer.
    AlwaysPack,
    /// Always send the span with strides, however sparse.
    AlwaysSpan,
}

/// `"auto"`, `"pack"` or `"span"`, as the bindings and the command line name the policies.
impl std::str::FromStr for LayoutPolicy {
    type Err = EncodeError;

    fn from_str(s: &str) -> Result<LayoutPolicy, EncodeError> {
        match s {
            "auto" => Ok(LayoutPolicy::Auto),
            "pack" => Ok(LayoutPolicy::AlwaysPack),
            "span" => Ok(LayoutPolicy::AlwaysSpan),
            other => Err(EncodeError::InvalidOption(format!(
                "layout must be 'auto', 'pack' or 'span', not {other:?}"
            ))),
        }
    }
}

/// Default minimum of used bytes over span bytes for sending a span rather than packing.
pub const DEFAULT_SPAN_THRESHOLD: f64 = 0.5;

/// Memory order of a contiguous array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// Row-major.
    C,
    /// Column-major.
    F,
}

impl Order {
    /// numpy's order string.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::C => "C",
            Order::F => "F",
        }
    }
}

/// What to send for one array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The elements are contiguous in `order`: send `byte_len` bytes starting at element zero.
    Contiguous {
        /// Memory order.
        order: Order,
        /// Number of bytes.
        byte_len: usize,
    },
    /// Send the bytes `low..high` around element zero; the receiver gets strides and the
    /// offset `-low` of element zero inside the span.
    Span {
        /// Byte range around element zero.
        extent: Extent,
    },
    /// Pack the unique elements (broadcast axes collapsed) into a new C-ordered buffer of
    /// `byte_len` bytes; the receiver gets `strides` (zero on broadcast axes).
    Pack {
        /// Size of the packed buffer.
        byte_len: usize,
        /// Strides of the rebuilt array over the packed buffer.
        strides: Vec<isize>,
    },
}

/// Decides what to send for an array of `shape`, byte `strides` and `itemsize`.
pub fn plan(
    shape: &[usize],
    strides: &[isize],
    itemsize: usize,
    policy: LayoutPolicy,
    threshold: f64,
) -> Result<Plan, EncodeError> {
    if shape.len() != strides.len() {
        return Err(EncodeError::Layout(format!(
            "{} dimensions but {} strides",
            shape.len(),
            strides.len()
        )));
    }
    let count = wire::product(shape, "element count")?;
    let byte_len = wire::mul(count, itemsize, "array byte length")?;
    if count == 0 || is_contiguous(shape, strides, &c_strides(shape, itemsize)) {
        return Ok(Plan::Contiguous {
            order: Order::C,
            byte_len,
        });
    }
    if is_contiguous(shape, strides, &f_strides(shape, itemsize)) {
        return Ok(Plan::Contiguous {
            order: Order::F,
            byte_len,
        });
    }
    let extent = Extent::of(shape, strides, itemsize)?.ok_or(WireError::Overflow {
        what: "array extent",
    })?;
    let (unique_shape, packed) = packed_strides(shape, strides, itemsize);
    let used = wire::mul(
        wire::product(&unique_shape, "element count")?,
        itemsize,
        "array byte length",
    )?;
    let span_ok = match policy {
        LayoutPolicy::AlwaysSpan => true,
        LayoutPolicy::AlwaysPack => false,
        LayoutPolicy::Auto => used as f64 >= threshold * extent.len() as f64,
    };
    if span_ok {
        Ok(Plan::Span { extent })
    } else {
        Ok(Plan::Pack {
            byte_len: used,
            strides: packed,
        })
    }
}

/// The shape with broadcast (zero-stride) axes collapsed to one, and the strides of the
/// rebuilt array over a C-ordered packing of that shape (zero on broadcast axes).
pub fn packed_strides(
    shape: &[usize],
    strides: &[isize],
    itemsize: usize,
) -> (Vec<usize>, Vec<isize>) {
    let unique: Vec<usize> = shape
        .iter()
        .zip(strides)
        .map(|(&d, &s)| if s == 0 { 1 } else { d })
        .collect();
    let mut packed = c_strides(&unique, itemsize);
    for (p, &s) in packed.iter_mut().zip(strides) {
        if s == 0 {
            *p = 0;
        }
    }
    (unique, packed)
}

/// Copies the elements of a strided array into `out`, in C order over the shape with
/// broadcast axes collapsed. `data[offset]` is element zero. Runs along the innermost axis
/// that are contiguous are copied in one piece.
pub fn pack_into(
    data: &[u8],
    offset: usize,
    shape: &[usize],
    strides: &[isize],
    itemsize: usize,
    out: &mut Vec<u8>,
) {
    let (unique, _) = packed_strides(shape, strides, itemsize);
    if unique.contains(&0) {
        return;
    }
    pack_chunks(data, offset, &unique, strides, itemsize, &mut |chunk| {
        out.extend_from_slice(chunk)
    });
}

/// Walks the elements as [`pack_into`] does and hands contiguous runs to `sink`.
pub fn pack_chunks(
    data: &[u8],
    offset: usize,
    unique: &[usize],
    strides: &[isize],
    itemsize: usize,
    sink: &mut dyn FnMut(&[u8]),
) {
    let nd = unique.len();
    if nd == 0 {
        sink(&data[offset..offset + itemsize]);
        return;
    }
    let inner_len = unique[nd - 1];
    let inner_stride = strides[nd - 1];
    let inner_contig = inner_stride == itemsize as isize || inner_len == 1;
    let outer = &unique[..nd - 1];
    let mut index = vec![0usize; outer.len()];
    let outer_count: usize = outer.iter().product();
    for _ in 0..outer_count {
        let mut pos = offset as isize;
        for (&i, &s) in index.iter().zip(strides) {
            pos += i as isize * s;
        }
        if inner_contig {
            let start = pos as usize;
            sink(&data[start..start + inner_len * itemsize]);
        } else {
            for k in 0..inner_len {
                let start = (pos + k as isize * inner_stride) as usize;
                sink(&data[start..start + itemsize]);
            }
        }
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < outer[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_by_name() {
        assert_eq!("auto".parse::<LayoutPolicy>().unwrap(), LayoutPolicy::Auto);
        assert_eq!(
            "pack".parse::<LayoutPolicy>().unwrap(),
            LayoutPolicy::AlwaysPack
        );
        assert_eq!(
            "span".parse::<LayoutPolicy>().unwrap(),
            LayoutPolicy::AlwaysSpan
        );
        let e = "Span".parse::<LayoutPolicy>().unwrap_err();
        assert!(matches!(e, EncodeError::InvalidOption(_)), "{e:?}");
        assert!(e.to_string().contains("'auto', 'pack' or 'span'"), "{e}");
    }

    fn auto(shape: &[usize], strides: &[isize]) -> Plan {
        plan(
            shape,
            strides,
            8,
            LayoutPolicy::Auto,
            DEFAULT_SPAN_THRESHOLD,
        )
        .unwrap()
    }

    #[test]
    fn contiguous_orders() {
        assert_eq!(
            auto(&[2, 3], &[24, 8]),
            Plan::Contiguous {
                order: Order::C,
                byte_len: 48
            }
        );
        assert_eq!(
            auto(&[2, 3], &[8, 16]),
            Plan::Contiguous {
                order: Order::F,
                byte_len: 48
            }
        );
        assert_eq!(
            auto(&[], &[]),
            Plan::Contiguous {
                order: Order::C,
                byte_len: 8
            }
        );
        assert_eq!(
            auto(&[0, 3], &[8, 8]),
            Plan::Contiguous {
                order: Order::C,
                byte_len: 0
            }
        );
    }

    #[test]
    fn dense_span_and_reversal() {
        // a[:, ::2] of a 4x6 f8 array: half the span is used.
        assert_eq!(
            auto(&[4, 3], &[48, 16]),
            Plan::Span {
                extent: Extent {
                    low: 0,
                    high: 4 * 48 - 8
                }
            }
        );
        // a[::-1]
        assert_eq!(
            auto(&[5], &[-8]),
            Plan::Span {
                extent: Extent { low: -32, high: 8 }
            }
        );
    }

    #[test]
    fn broadcast_sends_one_row() {
        match auto(&[1000, 1000], &[0, 8]) {
            Plan::Span { extent } => assert_eq!(extent.len(), 8000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sparse_is_packed() {
        // a[::-1, ::3] of a 6x9 array.
        match auto(&[6, 3], &[-72, 24]) {
            Plan::Pack { byte_len, strides } => {
                assert_eq!(byte_len, 6 * 3 * 8);
                assert_eq!(strides, vec![24, 8]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan(&[6, 3], &[-72, 24], 8, LayoutPolicy::AlwaysSpan, 0.5).unwrap(),
            Plan::Span { .. }
        ));
        assert!(matches!(
            plan(&[4, 3], &[48, 16], 8, LayoutPolicy::AlwaysPack, 0.5).unwrap(),
            Plan::Pack { .. }
        ));
    }

    #[test]
    fn pack_copies_in_c_order() {
        let data: Vec<u8> = (0..24).collect();
        let mut out = Vec::new();
        // 2x3 of 1-byte items with strides (12, 2), reversed rows.
        pack_into(&data, 12, &[2, 3], &[-12, 2], 1, &mut out);
        assert_eq!(out, vec![12, 14, 16, 0, 2, 4]);
        out.clear();
        pack_into(&data, 0, &[3, 2], &[0, 1], 1, &mut out);
        assert_eq!(out, vec![0, 1]);
    }

    #[test]
    fn overflow_is_an_error() {
        assert!(plan(&[usize::MAX, 2], &[8, 8], 8, LayoutPolicy::Auto, 0.5).is_err());
    }
}
