//! `safe_loads`' direct path: one pass over the pickle that builds the Python objects as it
//! reads, as CPython's unpickler does, for the pickles arrays are usually in — builtins,
//! numpy arrays and dtypes in every numpy and ndpickle form, protocols 2 to 5, in-band.
//!
//! It calls nothing: containers are made and filled here, numpy dtypes and arrays are built
//! by the core's constructors ([`ndpickle::read::direct`], the ones the full reader's
//! matchers call) and turned into numpy objects by the [`Converter`] the full reader uses.
//! It understands a subset of the format. On anything outside it — another opcode or
//! global, a shared reference to a mutable container, out-of-band or large data, a
//! malformed stream, a value near a limit — it gives up with [`Bail`] having changed
//! nothing the caller can see, and `safe_loads` runs the full reader, which decides
//! (its errors are the only ones users see). So the subset is a matter of speed only.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use ndpickle::opcodes::*;
use ndpickle::read::direct::{self as core, Form};
use ndpickle::{DType, NdArray, ReadOptions, Value};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};

use crate::convert::{Converter, Parts, dtype_to_numpy};

/// The direct path gave up: the full reader takes the pickle.
pub(crate) struct Bail;

type Step<T = ()> = Result<T, Bail>;

impl From<PyErr> for Bail {
    fn from(_: PyErr) -> Bail {
        Bail
    }
}

impl From<ndpickle::DecodeError> for Bail {
    fn from(_: ndpickle::DecodeError) -> Bail {
        Bail
    }
}

/// Array data at least this large goes to the full reader, which views or maps it (this
/// path copies every array it builds).
const LARGE: usize = 1 << 16;

/// A depth no array or dtype exceeds in the full reader's count (a call, its argument
/// tuple and the shape tuple inside), so this path's depths never undercount.
const ARRAY_DEPTH: u32 = 4;

/// What one object costs the allocation count besides its data (the full reader charges
/// about as much per value).
const OBJECT_BYTES: u64 = 64;

/// Bytes from the pickle, made into a Python object only when used as a value.
struct LazyBytes<'py> {
    data: Source,
    /// `bytearray` (a mutable object: never shared, never both a value and array data).
    mutable: bool,
    obj: OnceCell<Bound<'py, PyAny>>,
    /// Whether an array was built over these bytes.
    used: Cell<bool>,
}

/// Array data as [`Vm::data_window`] finds it.
struct Window<'v> {
    source: &'v Source,
    len: usize,
}

/// Where a [`LazyBytes`]' bytes are.
enum Source {
    /// `(start, len)` in the input.
    Input(usize, usize),
    /// Made while reading (`_codecs.encode`).
    Made(Bytes),
    /// Made while reading and handed to the array built over it (any other use gives up).
    Moved,
}

/// Text from the pickle (UTF-8, checked), made into a `str` only when used as a value:
/// protocol 2 spells array data as text that only `_codecs.encode` reads.
struct LazyText<'py> {
    start: usize,
    len: usize,
    obj: OnceCell<Bound<'py, PyAny>>,
}

/// Text at least this long is kept as [`LazyText`].
const LONG_TEXT: usize = 64;

/// A tuple whose items are not all objects (the arguments of a call): its items are
/// `tuple_items[start..start + len]`.
struct LazyTuple<'py> {
    start: usize,
    len: usize,
    obj: OnceCell<Bound<'py, PyAny>>,
}

/// `numpy.dtype(*args)` with its `BUILD` state, computed on first use.
struct LazyDType<'py> {
    args: Vec<Value>,
    state: Option<Value>,
    dtype: Option<DType>,
    obj: Option<Bound<'py, PyAny>>,
}

/// What a call made: an item, or bytes to keep as a lazy byte string.
enum Made<'py> {
    Item(Item<'py>),
    Bytes(Bytes),
}

/// A callable on the stack, word-aligned: every [`Item`] payload then starts at the same
/// offset, and items move as two words.
#[derive(Clone, Copy)]
#[repr(align(8))]
struct Callable(Form);

/// A stack or memo entry.
#[derive(Clone)]
enum Item<'py> {
    /// A finished object, shared as it is, with an upper bound of its nesting depth.
    Obj(Bound<'py, PyAny>, u32),
    /// A list or dict made here: mutable, so never shared (a memo `GET` or `DUP` of it
    /// gives up), its depth growing as items arrive.
    Mutable(Bound<'py, PyAny>, u32),
    /// An int that fits 64 bits, made into a Python `int` only when used as a value.
    Int(i64),
    /// Long text.
    Text(Rc<LazyText<'py>>),
    /// In-band bytes.
    Bytes(u32),
    /// A tuple of items that are not all objects.
    Tuple(u32, u32),
    /// A callable.
    Global(Callable),
    /// A dtype.
    DType(Rc<RefCell<LazyDType<'py>>>),
    /// `_reconstruct(ndarray, ...)`: the array its `BUILD` makes.
    Pending(Rc<OnceCell<Bound<'py, PyAny>>>),
}

struct Vm<'a, 'py> {
    py: Python<'py>,
    input: &'a [u8],
    shared: &'a Bytes,
    pos: usize,
    stack: Vec<Item<'py>>,
    marks: Vec<usize>,
    memo: Vec<Option<Item<'py>>>,
    opts: &'a ReadOptions,
    conv: &'a Converter<'a>,
    alloc: Cell<u64>,
    limit: u64,
    /// The lazy byte strings, by [`Item::Bytes`] index.
    bytes: Vec<LazyBytes<'py>>,
    /// The lazy tuples, by [`Item::Tuple`] index, and their items.
    tuples: Vec<LazyTuple<'py>>,
    tuple_items: Vec<Item<'py>>,
    /// Reused for the arguments of each call.
    scratch: Vec<Item<'py>>,
    /// Reused for the shape and strides of each array.
    shape_buf: RefCell<Vec<usize>>,
    strides_buf: RefCell<Vec<isize>>,
}

/// Reads `input` (the bytes of `shared`) in one pass, or gives up. `opts` must carry the
/// default limits: the count here bounds allocation and depth as the full reader would
/// without matching its accounting byte for byte.
pub(crate) fn load<'py>(
    py: Python<'py>,
    shared: &Bytes,
    opts: &ReadOptions,
    conv: &Converter<'_>,
) -> Step<Bound<'py, PyAny>> {
    // Room for what a pickle of many small values needs, so that the vectors do not move
    // as they grow.
    let room = (shared.len() / 16).min(opts.max_memo_entries());
    let pool = POOL.with(|p| p.borrow_mut().take()).unwrap_or_default();
    let mut vm = Vm {
        py,
        input: shared,
        shared,
        pos: 0,
        stack: recycle(pool.stack),
        marks: Vec::new(),
        memo: recycle(pool.memo),
        opts,
        conv,
        alloc: Cell::new(0),
        bytes: recycle(pool.bytes),
        tuples: recycle(pool.tuples),
        tuple_items: recycle(pool.tuple_items),
        scratch: recycle(pool.scratch),
        shape_buf: RefCell::new(Vec::new()),
        strides_buf: RefCell::new(Vec::new()),
        limit: opts.alloc_limit(shared.len() as u64) / 2,
    };
    vm.memo.reserve(room);
    vm.tuple_items.reserve(room);
    vm.bytes.reserve(room / 4);
    vm.tuples.reserve(room / 4);
    let out = {
        let _paused = GcPause::new();
        vm.run().and_then(|root| {
            if opts.strict() && vm.pos < shared.len() {
                return Err(Bail);
            }
            vm.to_py(&root)
        })
    };
    let Vm {
        stack,
        memo,
        bytes,
        tuples,
        tuple_items,
        scratch,
        ..
    } = vm;
    let pool = Pool {
        stack: keep(stack),
        memo: keep(memo),
        bytes: keep(bytes),
        tuples: keep(tuples),
        tuple_items: keep(tuple_items),
        scratch: keep(scratch),
    };
    POOL.with(|p| *p.borrow_mut() = Some(pool));
    out
}

/// The vectors a load fills, kept empty between loads on a thread (each up to [`KEEP`]
/// bytes of capacity) so that the next load of many small values neither grows them again
/// nor faults in fresh pages.
#[derive(Default)]
struct Pool {
    stack: Vec<Item<'static>>,
    memo: Vec<Option<Item<'static>>>,
    bytes: Vec<LazyBytes<'static>>,
    tuples: Vec<LazyTuple<'static>>,
    tuple_items: Vec<Item<'static>>,
    scratch: Vec<Item<'static>>,
}

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
}

/// Capacity a pooled vector keeps, in bytes.
const KEEP: usize = 2 << 20;

/// Moves `from[at..]` to the end of `to`, as `to.extend(from.drain(at..))` does, with one
/// copy of the block (the per-item moves of a drain of a two-word enum cost more than the
/// rest of building a tuple).
fn move_tail<T>(from: &mut Vec<T>, at: usize, to: &mut Vec<T>) {
    let Some(n) = from.len().checked_sub(at) else {
        return;
    };
    to.reserve(n);
    // SAFETY: `from[at..]` holds `n` initialized items and `to` has room for `n` more after
    // its length (reserved above); the two buffers are distinct allocations. The items are
    // moved bitwise: `from`'s length is cut to `at` so that they are not dropped there, and
    // `to`'s length grows by `n` to own them.
    unsafe {
        std::ptr::copy_nonoverlapping(from.as_ptr().add(at), to.as_mut_ptr().add(to.len()), n);
        from.set_len(at);
        to.set_len(to.len() + n);
    }
}

/// `v` emptied (its items dropped here, with the GIL held), as a vector of the same type
/// for any lifetime: the pool's `'static`, or the next load's `'py`.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    if std::mem::size_of::<T>() != std::mem::size_of::<U>()
        || std::mem::align_of::<T>() != std::mem::align_of::<U>()
    {
        return Vec::new();
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: `v` is empty, so no value of `T` is read as a `U`; its buffer was allocated
    // for `capacity` elements of `T`, which has the size and alignment of `U` (checked
    // above), so the layout a `Vec<U>` of that capacity deallocates with is the one it was
    // allocated with. The `ManuallyDrop` keeps `v` from freeing the buffer it hands over.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<U>(), 0, v.capacity()) }
}

/// [`recycle`] for the pool, which keeps vectors up to [`KEEP`] bytes of capacity.
fn keep<T, U>(v: Vec<T>) -> Vec<U> {
    if v.capacity().saturating_mul(std::mem::size_of::<T>()) > KEEP {
        return Vec::new();
    }
    recycle(v)
}

/// Holds the cycle collector off while the direct path runs and turns it back on (if it was
/// on) when dropped. Nothing the direct path builds is part of a cycle (a shared reference to a
/// mutable container makes it give up), so a collection in the middle of a load would only
/// traverse its young objects again and again; the collector runs as usual once it is back.
struct GcPause(bool);

impl GcPause {
    fn new() -> GcPause {
        // SAFETY: called with the GIL held (the direct path runs under `Python<'py>`).
        GcPause(unsafe { pyo3::ffi::PyGC_Disable() } == 1)
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: the GIL is still held: the guard lives inside `load`.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

fn depth_of(item: &Item<'_>) -> u32 {
    match item {
        Item::Obj(_, d) | Item::Mutable(_, d) => *d,
        Item::Tuple(_, d) => *d,
        Item::Bytes(_) | Item::Text(_) | Item::Int(_) => 0,
        Item::Global(_) | Item::DType(_) | Item::Pending(_) => ARRAY_DEPTH,
    }
}

impl<'a, 'py> Vm<'a, 'py> {
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let input: &'a [u8] = self.input;
        let end = self.pos.checked_add(n).ok_or(Bail)?;
        let b = input.get(self.pos..end).ok_or(Bail)?;
        self.pos = end;
        Ok(b)
    }

    fn arg<const N: usize>(&mut self) -> Step<[u8; N]> {
        let b = self.take(N)?;
        Ok(b.try_into().unwrap_or([0; N]))
    }

    fn len_arg<const N: usize>(&mut self) -> Step<usize> {
        let b = self.arg::<N>()?;
        let mut v = [0u8; 8];
        v[..N].copy_from_slice(&b);
        usize::try_from(u64::from_le_bytes(v)).map_err(|_| Bail)
    }

    fn line(&mut self) -> Step<&'a [u8]> {
        let input: &'a [u8] = self.input;
        let rest = input.get(self.pos..).ok_or(Bail)?;
        let n = rest.iter().position(|&c| c == b'\n').ok_or(Bail)?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn charge(&self, n: u64) -> Step {
        let total = self.alloc.get().saturating_add(n);
        self.alloc.set(total);
        if total > self.limit {
            return Err(Bail);
        }
        Ok(())
    }

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// The top of the stack, above the last mark (what the full reader's `top` allows).
    fn top(&self) -> Step<&Item<'py>> {
        if self.stack.len() <= self.fence() {
            return Err(Bail);
        }
        self.stack.last().ok_or(Bail)
    }

    fn pop(&mut self) -> Step<Item<'py>> {
        if self.stack.len() <= self.fence() {
            return Err(Bail);
        }
        self.stack.pop().ok_or(Bail)
    }

    fn pop_mark(&mut self) -> Step<Vec<Item<'py>>> {
        let m = self.marks.pop().ok_or(Bail)?;
        Ok(self.stack.split_off(m))
    }

    fn push_obj(&mut self, obj: Bound<'py, PyAny>) -> Step {
        self.charge(OBJECT_BYTES)?;
        self.stack.push(Item::Obj(obj, 0));
        Ok(())
    }

    fn push_int(&mut self, i: i64) -> Step {
        self.charge(OBJECT_BYTES)?;
        self.stack.push(Item::Int(i));
        Ok(())
    }

    fn push_depth(&mut self, item: Item<'py>) -> Step {
        if depth_of(&item).saturating_add(ARRAY_DEPTH) >= self.opts.max_depth() as u32 {
            return Err(Bail);
        }
        self.stack.push(item);
        Ok(())
    }

    fn memo_put(&mut self, key: usize) -> Step {
        let top = self.top()?.clone();
        if key > self.memo.len() || self.memo.len() >= self.opts.max_memo_entries() {
            return Err(Bail);
        }
        if key == self.memo.len() {
            self.memo.push(Some(top));
        } else {
            self.memo[key] = Some(top);
        }
        Ok(())
    }

    fn memo_get(&mut self, key: usize) -> Step {
        let item = self.memo.get(key).and_then(Option::as_ref).ok_or(Bail)?;
        let mutable_bytes = matches!(item, Item::Bytes(b) if self.bytes[*b as usize].mutable);
        if matches!(item, Item::Mutable(..)) || mutable_bytes {
            return Err(Bail);
        }
        let item = item.clone();
        self.stack.push(item);
        Ok(())
    }

    fn text(&mut self, n: usize) -> Step {
        let start = self.pos;
        let b = self.take(n)?;
        let s = simdutf8::basic::from_utf8(b).map_err(|_| Bail)?;
        self.charge(n as u64)?;
        if n >= LONG_TEXT {
            self.charge(OBJECT_BYTES)?;
            self.stack.push(Item::Text(Rc::new(LazyText {
                start,
                len: n,
                obj: OnceCell::new(),
            })));
            return Ok(());
        }
        let obj = PyString::new(self.py, s).into_any();
        self.push_obj(obj)
    }

    /// The text of a [`LazyText`] (checked UTF-8 when it was read).
    fn text_of(&self, t: &LazyText<'_>) -> Step<&'a str> {
        let input: &'a [u8] = self.input;
        let b = input.get(t.start..t.start + t.len).ok_or(Bail)?;
        simdutf8::basic::from_utf8(b).map_err(|_| Bail)
    }

    fn bytes(&mut self, n: usize, mutable: bool) -> Step {
        let start = self.pos;
        self.take(n)?;
        self.charge(OBJECT_BYTES)?;
        let item = self.lazy_bytes(Source::Input(start, n), mutable)?;
        self.stack.push(item);
        Ok(())
    }

    fn lazy_bytes(&mut self, data: Source, mutable: bool) -> Step<Item<'py>> {
        let i = u32::try_from(self.bytes.len()).map_err(|_| Bail)?;
        self.bytes.push(LazyBytes {
            data,
            mutable,
            obj: OnceCell::new(),
            used: Cell::new(false),
        });
        Ok(Item::Bytes(i))
    }

    /// The bytes of a [`LazyBytes`].
    fn bytes_of(&self, b: &LazyBytes<'_>) -> Step<Bytes> {
        Ok(match &b.data {
            Source::Input(start, n) => self.shared.slice(*start..start + n),
            Source::Made(d) => d.clone(),
            Source::Moved => return Err(Bail),
        })
    }

    /// Replaces the stack's items from `from` on with their tuple.
    fn tuple(&mut self, from: usize) -> Step {
        let n = self.stack.len().checked_sub(from).ok_or(Bail)?;
        self.charge(OBJECT_BYTES + 8 * n as u64)?;
        let items = &self.stack[from..];
        let depth = 1 + items.iter().map(depth_of).max().unwrap_or(0);
        let item = if items.iter().all(|i| matches!(i, Item::Obj(..))) {
            let objs = items.iter().map(|i| match i {
                Item::Obj(o, _) => o,
                _ => unreachable!("checked: every item is an object"),
            });
            let t = Item::Obj(PyTuple::new(self.py, objs)?.into_any(), depth);
            self.stack.truncate(from);
            t
        } else {
            let i = u32::try_from(self.tuples.len()).map_err(|_| Bail)?;
            self.tuples.push(LazyTuple {
                start: self.tuple_items.len(),
                len: n,
                obj: OnceCell::new(),
            });
            move_tail(&mut self.stack, from, &mut self.tuple_items);
            Item::Tuple(i, depth)
        };
        self.push_depth(item)
    }

    /// Executes opcodes up to `STOP` and returns the root.
    fn run(&mut self) -> Step<Item<'py>> {
        loop {
            let op = *self.input.get(self.pos).ok_or(Bail)?;
            self.pos += 1;
            match op {
                PROTO => {
                    let [v] = self.arg::<1>()?;
                    if v > HIGHEST_PROTOCOL {
                        return Err(Bail);
                    }
                }
                FRAME => {
                    let n = self.len_arg::<8>()?;
                    if self.input.len() - self.pos < n {
                        return Err(Bail);
                    }
                }
                STOP => return self.pop(),
                MARK => {
                    self.charge(8)?;
                    self.marks.push(self.stack.len());
                }
                POP => {
                    self.pop()?;
                }
                NONE => self.push_obj(self.py.None().into_bound(self.py))?,
                NEWTRUE => self.push_obj(PyBool::new(self.py, true).to_owned().into_any())?,
                NEWFALSE => self.push_obj(PyBool::new(self.py, false).to_owned().into_any())?,
                BININT => {
                    let v = i32::from_le_bytes(self.arg::<4>()?);
                    self.push_int(v.into())?;
                }
                BININT1 => {
                    let [v] = self.arg::<1>()?;
                    self.push_int(v.into())?;
                }
                BININT2 => {
                    let v = u16::from_le_bytes(self.arg::<2>()?);
                    self.push_int(v.into())?;
                }
                LONG1 => {
                    let n = self.len_arg::<1>()?;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(Bail);
                    }
                    // Two's complement, little-endian, sign-extended from its top byte.
                    let fill = if b.last().is_some_and(|&c| c >= 0x80) {
                        0xFF
                    } else {
                        0
                    };
                    let mut v = [fill; 8];
                    v[..n].copy_from_slice(b);
                    self.push_int(i64::from_le_bytes(v))?;
                }
                BINFLOAT => {
                    let f = f64::from_be_bytes(self.arg::<8>()?);
                    self.push_obj(PyFloat::new(self.py, f).into_any())?;
                }
                SHORT_BINUNICODE => {
                    let n = self.len_arg::<1>()?;
                    self.text(n)?;
                }
                BINUNICODE => {
                    let n = self.len_arg::<4>()?;
                    self.text(n)?;
                }
                BINUNICODE8 => {
                    let n = self.len_arg::<8>()?;
                    self.text(n)?;
                }
                SHORT_BINBYTES => {
                    let n = self.len_arg::<1>()?;
                    self.bytes(n, false)?;
                }
                BINBYTES => {
                    let n = self.len_arg::<4>()?;
                    self.bytes(n, false)?;
                }
                BINBYTES8 => {
                    let n = self.len_arg::<8>()?;
                    self.bytes(n, false)?;
                }
                BYTEARRAY8 => {
                    let n = self.len_arg::<8>()?;
                    self.bytes(n, true)?;
                }
                EMPTY_TUPLE => self.push_obj(PyTuple::empty(self.py).into_any())?,
                EMPTY_LIST => {
                    self.charge(OBJECT_BYTES)?;
                    let l = PyList::empty(self.py).into_any();
                    self.push_depth(Item::Mutable(l, 1))?;
                }
                EMPTY_DICT => {
                    self.charge(OBJECT_BYTES)?;
                    let d = PyDict::new(self.py).into_any();
                    self.push_depth(Item::Mutable(d, 1))?;
                }
                TUPLE => {
                    let from = self.marks.pop().ok_or(Bail)?;
                    self.tuple(from)?;
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = usize::from(op - TUPLE1 + 1);
                    if self.stack.len() < self.fence() + n {
                        return Err(Bail);
                    }
                    self.tuple(self.stack.len() - n)?;
                }
                APPEND => {
                    let v = self.pop()?;
                    self.extend(vec![v])?;
                }
                APPENDS => {
                    let items = self.pop_mark()?;
                    self.extend(items)?;
                }
                SETITEM => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                SETITEMS => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                BINGET => {
                    let [k] = self.arg::<1>()?;
                    self.memo_get(k.into())?;
                }
                LONG_BINGET => {
                    let k = self.len_arg::<4>()?;
                    self.memo_get(k)?;
                }
                BINPUT => {
                    let [k] = self.arg::<1>()?;
                    self.memo_put(k.into())?;
                }
                LONG_BINPUT => {
                    let k = self.len_arg::<4>()?;
                    self.memo_put(k)?;
                }
                MEMOIZE => self.memo_put(self.memo.len())?,
                GLOBAL => {
                    let module = std::str::from_utf8(self.line()?).map_err(|_| Bail)?;
                    let name = std::str::from_utf8(self.line()?).map_err(|_| Bail)?;
                    let form = core::form(module, name, self.opts).ok_or(Bail)?;
                    self.stack.push(Item::Global(Callable(form)));
                }
                STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let form = {
                        let (Item::Obj(m, _), Item::Obj(n, _)) = (&module, &name) else {
                            return Err(Bail);
                        };
                        let m = m.cast::<PyString>().map_err(|_| Bail)?;
                        let n = n.cast::<PyString>().map_err(|_| Bail)?;
                        core::form(m.to_str()?, n.to_str()?, self.opts).ok_or(Bail)?
                    };
                    self.stack.push(Item::Global(Callable(form)));
                }
                REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Item::Global(Callable(form)) = callable else {
                        return Err(Bail);
                    };
                    let made = self.call(form, &args)?;
                    self.push_depth(made)?;
                }
                BUILD => {
                    let state = self.pop()?;
                    self.build(&state)?;
                }
                _ => return Err(Bail),
            }
        }
    }

    /// `APPEND`/`APPENDS` onto the list on top of the stack.
    fn extend(&mut self, items: Vec<Item<'py>>) -> Step {
        let (objs, depth) = self.objects(&items, 8)?;
        let list = self.container(depth)?;
        let list = list.cast::<PyList>().map_err(|_| Bail)?;
        for o in objs {
            list.append(o)?;
        }
        Ok(())
    }

    /// `SETITEM`/`SETITEMS` into the dict on top of the stack.
    fn set_items(&mut self, items: Vec<Item<'py>>) -> Step {
        if !items.len().is_multiple_of(2) {
            return Err(Bail);
        }
        let (objs, depth) = self.objects(&items, 16)?;
        let dict = self.container(depth)?;
        let dict = dict.cast::<PyDict>().map_err(|_| Bail)?;
        let mut it = objs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.set_item(k, v)?;
        }
        Ok(())
    }

    /// The objects `items` stand for and their greatest depth, charged `per_item` bytes
    /// each, for a container about to take them.
    fn objects(&self, items: &[Item<'py>], per_item: u64) -> Step<(Vec<Bound<'py, PyAny>>, u32)> {
        self.charge(per_item * items.len() as u64)?;
        let mut objs = Vec::with_capacity(items.len());
        let mut depth = 0;
        for i in items {
            depth = depth.max(depth_of(i));
            objs.push(self.to_py(i)?);
        }
        Ok((objs, depth))
    }

    /// The list or dict on top of the stack (above the last mark), its depth raised to hold
    /// items as deep as `depth`.
    fn container(&mut self, depth: u32) -> Step<Bound<'py, PyAny>> {
        self.top()?;
        let max_depth = self.opts.max_depth() as u32;
        let Some(Item::Mutable(obj, d)) = self.stack.last_mut() else {
            return Err(Bail);
        };
        *d = (*d).max(depth.saturating_add(1));
        if d.saturating_add(ARRAY_DEPTH) >= max_depth {
            return Err(Bail);
        }
        Ok(obj.clone())
    }

    /// The Python object an item stands for as a value.
    fn to_py(&self, item: &Item<'py>) -> Step<Bound<'py, PyAny>> {
        Ok(match item {
            Item::Obj(o, _) | Item::Mutable(o, _) => o.clone(),
            Item::Int(i) => i.into_pyobject(self.py).map_err(|_| Bail)?.into_any(),
            Item::Bytes(i) => {
                let b = &self.bytes[*i as usize];
                if let Some(o) = b.obj.get() {
                    return Ok(o.clone());
                }
                if b.used.get() && b.mutable {
                    return Err(Bail);
                }
                let data = self.bytes_of(b)?;
                self.charge(data.len() as u64)?;
                let o = if b.mutable {
                    PyByteArray::new(self.py, &data).into_any()
                } else {
                    PyBytes::new(self.py, &data).into_any()
                };
                b.obj.get_or_init(|| o).clone()
            }
            Item::Text(t) => {
                if let Some(o) = t.obj.get() {
                    return Ok(o.clone());
                }
                let o = PyString::new(self.py, self.text_of(t)?).into_any();
                t.obj.get_or_init(|| o).clone()
            }
            Item::Tuple(i, _) => {
                let t = &self.tuples[*i as usize];
                if let Some(o) = t.obj.get() {
                    return Ok(o.clone());
                }
                let mut objs = Vec::with_capacity(t.len);
                for x in &self.tuple_items[t.start..t.start + t.len] {
                    objs.push(self.to_py(x)?);
                }
                let o = PyTuple::new(self.py, objs)?.into_any();
                t.obj.get_or_init(|| o).clone()
            }
            Item::DType(d) => {
                if let Some(o) = &d.borrow().obj {
                    return Ok(o.clone());
                }
                let dtype = self.dtype(d)?;
                let o = dtype_to_numpy(self.py, &dtype)?;
                d.borrow_mut().obj = Some(o.clone());
                o
            }
            Item::Pending(cell) => cell.get().ok_or(Bail)?.clone(),
            Item::Global(_) => return Err(Bail),
        })
    }

    /// A plain value of an item, for the dtype constructor. Each value built is charged: a
    /// tuple the pickle refers to twice becomes two trees here, so tuples of tuples fetched
    /// from the memo would otherwise grow exponentially.
    fn value(&self, item: &Item<'py>) -> Step<Value> {
        self.charge(OBJECT_BYTES)?;
        Ok(match item {
            Item::Obj(o, _) => {
                if o.is_none() {
                    Value::None
                } else if let Ok(b) = o.cast::<PyBool>() {
                    Value::Bool(b.is_true())
                } else if o.is_instance_of::<PyInt>() {
                    Value::Int(o.extract::<i64>()?)
                } else if let Ok(s) = o.cast::<PyString>() {
                    Value::Str(s.to_str()?.to_owned())
                } else if let Ok(t) = o.cast::<PyTuple>() {
                    let mut items = Vec::with_capacity(t.len());
                    for x in t.iter() {
                        items.push(self.value(&Item::Obj(x, 0))?);
                    }
                    Value::Tuple(items)
                } else {
                    return Err(Bail);
                }
            }
            Item::Tuple(i, _) => {
                let t = &self.tuples[*i as usize];
                let mut items = Vec::with_capacity(t.len);
                for x in &self.tuple_items[t.start..t.start + t.len] {
                    items.push(self.value(x)?);
                }
                Value::Tuple(items)
            }
            Item::DType(d) => Value::DType(self.dtype(d)?),
            Item::Int(i) => Value::Int(*i),
            Item::Text(t) => Value::Str(self.text_of(t)?.to_owned()),
            Item::Bytes(i) if !self.bytes[*i as usize].mutable => {
                Value::Bytes(self.bytes_of(&self.bytes[*i as usize])?)
            }
            _ => return Err(Bail),
        })
    }

    /// The dtype an item stands for, computed once.
    fn dtype(&self, d: &Rc<RefCell<LazyDType<'py>>>) -> Step<DType> {
        let mut d = d.borrow_mut();
        if let Some(t) = &d.dtype {
            return Ok(t.clone());
        }
        let t = core::dtype(&d.args, d.state.as_ref())?;
        d.dtype = Some(t.clone());
        Ok(t)
    }

    /// The items of a tuple item (arguments or a state), cloned out.
    fn items(&self, item: &Item<'py>, into: &mut Vec<Item<'py>>) -> Step {
        into.clear();
        match item {
            Item::Tuple(i, _) => {
                let t = &self.tuples[*i as usize];
                into.extend_from_slice(&self.tuple_items[t.start..t.start + t.len]);
            }
            Item::Obj(o, _) => {
                let t = o.cast::<PyTuple>().map_err(|_| Bail)?;
                into.extend(t.iter().map(|x| Item::Obj(x, 0)));
            }
            _ => return Err(Bail),
        }
        Ok(())
    }

    /// The call `form(*args)`.
    fn call(&mut self, form: Form, args: &Item<'py>) -> Step<Item<'py>> {
        let made = match args {
            // A lazy tuple's items are read where they are.
            Item::Tuple(i, _) => {
                let t = &self.tuples[*i as usize];
                self.call_with(form, &self.tuple_items[t.start..t.start + t.len])
            }
            _ => {
                let mut scratch = std::mem::take(&mut self.scratch);
                self.items(args, &mut scratch)?;
                let made = self.call_with(form, &scratch);
                scratch.clear();
                self.scratch = scratch;
                made
            }
        };
        match made? {
            Made::Item(item) => Ok(item),
            Made::Bytes(data) => self.lazy_bytes(Source::Made(data), false),
        }
    }

    fn call_with(&self, form: Form, args: &[Item<'py>]) -> Step<Made<'py>> {
        Ok(Made::Item(match (form, args) {
            (Form::DType, _) => {
                let args = args.iter().map(|a| self.value(a)).collect::<Step<_>>()?;
                Item::DType(Rc::new(RefCell::new(LazyDType {
                    args,
                    state: None,
                    dtype: None,
                    obj: None,
                })))
            }
            (Form::CodecsEncode, [text, enc]) => {
                let text = match text {
                    Item::Text(t) => std::borrow::Cow::Borrowed(self.text_of(t)?),
                    other => str_arg(other)?,
                };
                return Ok(Made::Bytes(core::codecs_encode(&text, &str_arg(enc)?)?));
            }
            (Form::Reconstruct, [Item::Global(Callable(Form::NdArray)), _, _]) => {
                Item::Pending(Rc::new(OnceCell::new()))
            }
            (Form::FromBuffer, [data, dtype, shape, order]) => {
                let (data, readonly) = self.data(data)?;
                let dtype = self.dtype_arg(dtype)?;
                let shape = self.shape(shape)?;
                let order = str_arg(order)?;
                let a = core::frombuffer(data, readonly, dtype, shape, &order)?;
                self.array(a)?
            }
            (Form::NdArray, [shape, dtype, data, offset, strides, order]) => {
                let mut shape_buf = self.shape_buf.borrow_mut();
                self.ints_into(shape, &mut shape_buf)?;
                let shape: &[usize] = &shape_buf;
                let Item::DType(lazy) = dtype else {
                    return Err(Bail);
                };
                self.dtype(lazy)?;
                let lazy = lazy.borrow();
                let dtype = lazy.dtype.as_ref().ok_or(Bail)?;
                let (window, readonly) = self.data_window(data)?;
                let offset = usize::try_from(self.int(offset)?).map_err(|_| Bail)?;
                let strides = match strides {
                    Item::Obj(o, _) if o.is_none() => None,
                    other => Some(self.ints(other)?),
                };
                let order = str_arg(order)?;
                // Numbers and datetimes: checked as the constructor checks them, and made
                // without building the intermediate array, from the input where the data is.
                let mut strides_buf = self.strides_buf.borrow_mut();
                let layout = core::ndarray_layout(
                    shape,
                    dtype,
                    window.len,
                    offset,
                    strides.as_deref(),
                    &order,
                    &mut strides_buf,
                );
                let (whole, base) = match &window.source {
                    Source::Input(start, _) => (self.shared, *start),
                    Source::Made(d) => (d, 0),
                    Source::Moved => return Err(Bail),
                };
                if layout.is_ok() {
                    self.charge(OBJECT_BYTES + window.len as u64)?;
                    let parts = Parts {
                        dtype,
                        shape,
                        strides: &strides_buf,
                        offset: base + offset,
                        data: whole,
                        readonly,
                    };
                    let obj = self.conv.array_parts(self.py, parts)?;
                    return Ok(Made::Item(Item::Obj(obj, ARRAY_DEPTH)));
                }
                let data = whole.slice(base..base + window.len);
                let a = core::ndarray(
                    shape.to_vec(),
                    dtype.clone(),
                    (data, readonly),
                    offset,
                    strides,
                    &order,
                )?;
                self.array(a)?
            }
            _ => return Err(Bail),
        }))
    }

    /// `BUILD` with `state` on the top of the stack: a dtype's state, or the array state of
    /// `_reconstruct`.
    fn build(&mut self, state: &Item<'py>) -> Step {
        match self.top()?.clone() {
            Item::DType(d) => {
                if d.borrow().dtype.is_some() || d.borrow().state.is_some() {
                    return Err(Bail);
                }
                let state = self.value(state)?;
                d.borrow_mut().state = Some(state);
            }
            Item::Pending(cell) => {
                if cell.get().is_some() {
                    return Err(Bail);
                }
                let mut parts = Vec::new();
                self.items(state, &mut parts)?;
                let [_, shape, dtype, fortran, raw] = parts.as_slice() else {
                    return Err(Bail);
                };
                let shape = self.shape(shape)?;
                let Item::DType(dtype) = dtype else {
                    return Err(Bail);
                };
                let dtype = self.dtype(dtype)?;
                let fortran = match fortran {
                    Item::Int(i) => *i != 0,
                    Item::Obj(o, _) => o.is_truthy()?,
                    _ => return Err(Bail),
                };
                let (data, _) = self.take_data(raw)?;
                let a = core::reconstruct(shape, dtype, fortran, data)?;
                let Item::Obj(obj, _) = self.array(a)? else {
                    return Err(Bail);
                };
                let _ = cell.set(obj);
            }
            _ => return Err(Bail),
        }
        Ok(())
    }

    /// The numpy array for `a`, made by the converter the full reader uses.
    fn array(&self, a: NdArray) -> Step<Item<'py>> {
        self.charge(OBJECT_BYTES + a.data().len() as u64)?;
        let obj = self.conv.array(self.py, a)?;
        Ok(Item::Obj(obj, ARRAY_DEPTH))
    }

    /// Where array data is, without slicing it out (see [`Vm::data`]).
    fn data_window(&self, item: &Item<'py>) -> Step<(Window<'_>, bool)> {
        let Item::Bytes(i) = item else {
            return Err(Bail);
        };
        let b = &self.bytes[*i as usize];
        let len = match &b.data {
            Source::Input(_, n) => *n,
            Source::Made(d) => d.len(),
            Source::Moved => return Err(Bail),
        };
        if len >= LARGE || (b.mutable && b.obj.get().is_some()) {
            return Err(Bail);
        }
        b.used.set(true);
        Ok((
            Window {
                source: &b.data,
                len,
            },
            !b.mutable,
        ))
    }

    /// Array data and whether it is read-only: small in-band bytes only.
    fn data(&self, item: &Item<'py>) -> Step<(Bytes, bool)> {
        let (w, readonly) = self.data_window(item)?;
        let data = match w.source {
            Source::Input(start, n) => self.shared.slice(*start..start + n),
            Source::Made(d) => d.clone(),
            Source::Moved => return Err(Bail),
        };
        Ok((data, readonly))
    }

    /// [`Vm::data`] for an array that takes the bytes over: bytes made while reading move
    /// into it (its memory then goes to numpy as it is, as the full reader's would).
    fn take_data(&mut self, item: &Item<'py>) -> Step<(Bytes, bool)> {
        let (_, readonly) = self.data_window(item)?;
        let Item::Bytes(i) = item else {
            return Err(Bail);
        };
        let b = &mut self.bytes[*i as usize];
        match std::mem::replace(&mut b.data, Source::Moved) {
            Source::Made(d) => Ok((d, readonly)),
            other => {
                b.data = other;
                self.data(item)
            }
        }
    }

    fn dtype_arg(&self, item: &Item<'py>) -> Step<DType> {
        match item {
            Item::DType(d) => self.dtype(d),
            _ => Err(Bail),
        }
    }

    fn int(&self, item: &Item<'py>) -> Step<i64> {
        match item {
            Item::Int(i) => Ok(*i),
            Item::Obj(o, _) => {
                if !o.is_exact_instance_of::<PyInt>() {
                    return Err(Bail);
                }
                Ok(o.extract()?)
            }
            _ => Err(Bail),
        }
    }

    fn ints<T: TryFrom<i64>>(&self, item: &Item<'py>) -> Step<Vec<T>> {
        let mut out = Vec::new();
        self.ints_into(item, &mut out)?;
        Ok(out)
    }

    /// The ints of a tuple item, into `out` (cleared first).
    fn ints_into<T: TryFrom<i64>>(&self, item: &Item<'py>, out: &mut Vec<T>) -> Step {
        out.clear();
        let to = |i: i64| T::try_from(i).map_err(|_| Bail);
        match item {
            Item::Tuple(i, _) => {
                let t = &self.tuples[*i as usize];
                for x in &self.tuple_items[t.start..t.start + t.len] {
                    out.push(to(self.int(x)?)?);
                }
            }
            Item::Obj(o, _) => {
                let t = o.cast::<PyTuple>().map_err(|_| Bail)?;
                for x in t.iter() {
                    out.push(to(self.int(&Item::Obj(x, 0))?)?);
                }
            }
            _ => return Err(Bail),
        }
        Ok(())
    }

    fn shape(&self, item: &Item<'py>) -> Step<Vec<usize>> {
        self.ints(item)
    }
}

/// A str argument, borrowed from its object.
fn str_arg<'i>(item: &'i Item<'_>) -> Step<std::borrow::Cow<'i, str>> {
    match item {
        Item::Obj(o, _) => Ok(o.cast::<PyString>().map_err(|_| Bail)?.to_cow()?),
        _ => Err(Bail),
    }
}
