//! Pickle opcodes, named as CPython's `pickle.py` and `pickletools` name them.

#![allow(missing_docs)] // each constant carries a one-line comment instead

// Protocol 0 and 1.
/// `(` push a mark object.
pub const MARK: u8 = b'(';
/// `.` end of pickle.
pub const STOP: u8 = b'.';
/// `0` discard the top of the stack.
pub const POP: u8 = b'0';
/// `1` discard the stack down to and including the topmost mark.
pub const POP_MARK: u8 = b'1';
/// `2` duplicate the top of the stack.
pub const DUP: u8 = b'2';
/// `F` push a float given as decimal text.
pub const FLOAT: u8 = b'F';
/// `I` push an int given as decimal text (`I00`/`I01` are False/True).
pub const INT: u8 = b'I';
/// `J` push a 4-byte signed int.
pub const BININT: u8 = b'J';
/// `K` push a 1-byte unsigned int.
pub const BININT1: u8 = b'K';
/// `L` push a long given as decimal text.
pub const LONG: u8 = b'L';
/// `M` push a 2-byte unsigned int.
pub const BININT2: u8 = b'M';
/// `N` push None.
pub const NONE: u8 = b'N';
/// `P` push an object named by a persistent id given as text.
pub const PERSID: u8 = b'P';
/// `Q` push an object named by the persistent id on the stack.
pub const BINPERSID: u8 = b'Q';
/// `R` call the callable below the argument tuple.
pub const REDUCE: u8 = b'R';
/// `S` push a str from a quoted Python literal.
pub const STRING: u8 = b'S';
/// `T` push a str with a 4-byte length.
pub const BINSTRING: u8 = b'T';
/// `U` push a str with a 1-byte length.
pub const SHORT_BINSTRING: u8 = b'U';
/// `V` push a unicode string given as raw-unicode-escaped text.
pub const UNICODE: u8 = b'V';
/// `X` push a UTF-8 string with a 4-byte length.
pub const BINUNICODE: u8 = b'X';
/// `a` append the top of the stack to the list below it.
pub const APPEND: u8 = b'a';
/// `b` set state on the object below the top (`__setstate__` or dict update).
pub const BUILD: u8 = b'b';
/// `c` push a global named by two newline-terminated lines.
pub const GLOBAL: u8 = b'c';
/// `d` build a dict from the items above the topmost mark.
pub const DICT: u8 = b'd';
/// `}` push an empty dict.
pub const EMPTY_DICT: u8 = b'}';
/// `e` extend the list below the mark with the items above it.
pub const APPENDS: u8 = b'e';
/// `g` push a memo entry named by decimal text.
pub const GET: u8 = b'g';
/// `h` push a memo entry named by a 1-byte index.
pub const BINGET: u8 = b'h';
/// `i` build an instance of a class named by two lines from the items above the mark.
pub const INST: u8 = b'i';
/// `j` push a memo entry named by a 4-byte index.
pub const LONG_BINGET: u8 = b'j';
/// `l` build a list from the items above the topmost mark.
pub const LIST: u8 = b'l';
/// `]` push an empty list.
pub const EMPTY_LIST: u8 = b']';
/// `o` build an instance from the class and arguments above the mark.
pub const OBJ: u8 = b'o';
/// `p` store the top of the stack in the memo at a decimal index.
pub const PUT: u8 = b'p';
/// `q` store the top of the stack in the memo at a 1-byte index.
pub const BINPUT: u8 = b'q';
/// `r` store the top of the stack in the memo at a 4-byte index.
pub const LONG_BINPUT: u8 = b'r';
/// `s` set one key/value pair in the dict below them.
pub const SETITEM: u8 = b's';
/// `t` build a tuple from the items above the topmost mark.
pub const TUPLE: u8 = b't';
/// `)` push an empty tuple.
pub const EMPTY_TUPLE: u8 = b')';
/// `u` set the key/value pairs above the mark in the dict below it.
pub const SETITEMS: u8 = b'u';
/// `G` push a float as 8 big-endian bytes.
pub const BINFLOAT: u8 = b'G';

// Protocol 2.
/// `\x80` protocol version marker.
pub const PROTO: u8 = 0x80;
/// `\x81` build an object with `cls.__new__(cls, *args)`.
pub const NEWOBJ: u8 = 0x81;
/// `\x82` push an object from the extension registry, 1-byte code.
pub const EXT1: u8 = 0x82;
/// `\x83` push an object from the extension registry, 2-byte code.
pub const EXT2: u8 = 0x83;
/// `\x84` push an object from the extension registry, 4-byte code.
pub const EXT4: u8 = 0x84;
/// `\x85` build a 1-tuple from the top of the stack.
pub const TUPLE1: u8 = 0x85;
/// `\x86` build a 2-tuple from the top two items.
pub const TUPLE2: u8 = 0x86;
/// `\x87` build a 3-tuple from the top three items.
pub const TUPLE3: u8 = 0x87;
/// `\x88` push True.
pub const NEWTRUE: u8 = 0x88;
/// `\x89` push False.
pub const NEWFALSE: u8 = 0x89;
/// `\x8a` push a long with a 1-byte length, little-endian two's complement.
pub const LONG1: u8 = 0x8a;
/// `\x8b` push a long with a 4-byte length.
pub const LONG4: u8 = 0x8b;

// Protocol 3.
/// `B` push bytes with a 4-byte length.
pub const BINBYTES: u8 = b'B';
/// `C` push bytes with a 1-byte length.
pub const SHORT_BINBYTES: u8 = b'C';

// Protocol 4.
/// `\x8c` push a UTF-8 string with a 1-byte length.
pub const SHORT_BINUNICODE: u8 = 0x8c;
/// `\x8d` push a UTF-8 string with an 8-byte length.
pub const BINUNICODE8: u8 = 0x8d;
/// `\x8e` push bytes with an 8-byte length.
pub const BINBYTES8: u8 = 0x8e;
/// `\x8f` push an empty set.
pub const EMPTY_SET: u8 = 0x8f;
/// `\x90` add the items above the mark to the set below it.
pub const ADDITEMS: u8 = 0x90;
/// `\x91` build a frozenset from the items above the mark.
pub const FROZENSET: u8 = 0x91;
/// `\x92` build an object with `cls.__new__(cls, *args, **kwargs)`.
pub const NEWOBJ_EX: u8 = 0x92;
/// `\x93` push a global named by the two strings on the stack.
pub const STACK_GLOBAL: u8 = 0x93;
/// `\x94` store the top of the stack at the next memo index.
pub const MEMOIZE: u8 = 0x94;
/// `\x95` start a frame of the given 8-byte length.
pub const FRAME: u8 = 0x95;

// Protocol 5.
/// `\x96` push a bytearray with an 8-byte length.
pub const BYTEARRAY8: u8 = 0x96;
/// `\x97` push the next out-of-band buffer.
pub const NEXT_BUFFER: u8 = 0x97;
/// `\x98` make the buffer on top of the stack read-only.
pub const READONLY_BUFFER: u8 = 0x98;

/// The highest protocol this crate knows.
pub const HIGHEST_PROTOCOL: u8 = 5;

/// CPython's name of an opcode, for error messages (`"?"` for bytes that are not opcodes).
pub fn name(op: u8) -> &'static str {
    match op {
        MARK => "MARK",
        STOP => "STOP",
        POP => "POP",
        POP_MARK => "POP_MARK",
        DUP => "DUP",
        FLOAT => "FLOAT",
        INT => "INT",
        BININT => "BININT",
        BININT1 => "BININT1",
        LONG => "LONG",
        BININT2 => "BININT2",
        NONE => "NONE",
        PERSID => "PERSID",
        BINPERSID => "BINPERSID",
        REDUCE => "REDUCE",
        STRING => "STRING",
        BINSTRING => "BINSTRING",
        SHORT_BINSTRING => "SHORT_BINSTRING",
        UNICODE => "UNICODE",
        BINUNICODE => "BINUNICODE",
        APPEND => "APPEND",
        BUILD => "BUILD",
        GLOBAL => "GLOBAL",
        DICT => "DICT",
        EMPTY_DICT => "EMPTY_DICT",
        APPENDS => "APPENDS",
        GET => "GET",
        BINGET => "BINGET",
        INST => "INST",
        LONG_BINGET => "LONG_BINGET",
        LIST => "LIST",
        EMPTY_LIST => "EMPTY_LIST",
        OBJ => "OBJ",
        PUT => "PUT",
        BINPUT => "BINPUT",
        LONG_BINPUT => "LONG_BINPUT",
        SETITEM => "SETITEM",
        TUPLE => "TUPLE",
        EMPTY_TUPLE => "EMPTY_TUPLE",
        SETITEMS => "SETITEMS",
        BINFLOAT => "BINFLOAT",
        PROTO => "PROTO",
        NEWOBJ => "NEWOBJ",
        EXT1 => "EXT1",
        EXT2 => "EXT2",
        EXT4 => "EXT4",
        TUPLE1 => "TUPLE1",
        TUPLE2 => "TUPLE2",
        TUPLE3 => "TUPLE3",
        NEWTRUE => "NEWTRUE",
        NEWFALSE => "NEWFALSE",
        LONG1 => "LONG1",
        LONG4 => "LONG4",
        BINBYTES => "BINBYTES",
        SHORT_BINBYTES => "SHORT_BINBYTES",
        SHORT_BINUNICODE => "SHORT_BINUNICODE",
        BINUNICODE8 => "BINUNICODE8",
        BINBYTES8 => "BINBYTES8",
        EMPTY_SET => "EMPTY_SET",
        ADDITEMS => "ADDITEMS",
        FROZENSET => "FROZENSET",
        NEWOBJ_EX => "NEWOBJ_EX",
        STACK_GLOBAL => "STACK_GLOBAL",
        MEMOIZE => "MEMOIZE",
        FRAME => "FRAME",
        BYTEARRAY8 => "BYTEARRAY8",
        NEXT_BUFFER => "NEXT_BUFFER",
        READONLY_BUFFER => "READONLY_BUFFER",
        _ => "?",
    }
}

/// Length of the opcode at `pos` with its argument.
pub(crate) fn op_len(data: &[u8], pos: usize) -> Result<usize, String> {
    let rest = &data[pos + 1..];
    let fixed = |n: usize| {
        if rest.len() >= n {
            Ok(1 + n)
        } else {
            Err("truncated argument".to_string())
        }
    };
    let counted = |width: usize| -> Result<usize, String> {
        if rest.len() < width {
            return Err("truncated length".into());
        }
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(&rest[..width]);
        let n =
            usize::try_from(u64::from_le_bytes(b)).map_err(|_| "length overflows".to_string())?;
        let total = n.checked_add(width).ok_or("length overflows")?;
        if rest.len() < total {
            return Err(format!("payload of {n} bytes is truncated"));
        }
        Ok(1 + total)
    };
    let lines = |count: usize| -> Result<usize, String> {
        let mut at = 0;
        for _ in 0..count {
            let nl = rest[at..]
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("unterminated line")?;
            at += nl + 1;
        }
        Ok(1 + at)
    };
    match data[pos] {
        MARK | STOP | POP | POP_MARK | DUP | NONE | NEWTRUE | NEWFALSE | EMPTY_DICT
        | EMPTY_LIST | EMPTY_TUPLE | EMPTY_SET | APPEND | APPENDS | BUILD | DICT | LIST | OBJ
        | REDUCE | SETITEM | SETITEMS | TUPLE | TUPLE1 | TUPLE2 | TUPLE3 | BINPERSID | ADDITEMS
        | FROZENSET | NEWOBJ | NEWOBJ_EX | STACK_GLOBAL | MEMOIZE | NEXT_BUFFER
        | READONLY_BUFFER => Ok(1),
        INT | LONG | FLOAT | STRING | UNICODE | PERSID | GET | PUT => lines(1),
        GLOBAL | INST => lines(2),
        BININT1 | BINGET | BINPUT | EXT1 | PROTO => fixed(1),
        BININT2 | EXT2 => fixed(2),
        BININT | LONG_BINGET | LONG_BINPUT | EXT4 => fixed(4),
        BINFLOAT => fixed(8),
        FRAME => fixed(8),
        SHORT_BINSTRING | SHORT_BINBYTES | SHORT_BINUNICODE | LONG1 => counted(1),
        BINSTRING | BINBYTES | BINUNICODE | LONG4 => counted(4),
        BINUNICODE8 | BINBYTES8 | BYTEARRAY8 => counted(8),
        other => Err(format!("unknown opcode 0x{other:02x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_lengths() {
        assert_eq!(op_len(b"K\x05", 0), Ok(2));
        assert_eq!(op_len(b"cmod\nname\n.", 0), Ok(10));
        assert_eq!(op_len(b"C\x02ab", 0), Ok(4));
        assert!(op_len(b"C\x05ab", 0).is_err());
        assert!(op_len(b"\x96\xff\xff\xff\xff\xff\xff\xff\xff", 0).is_err());
        assert!(op_len(b"\xff", 0).is_err());
        assert!(op_len(b"cmod\nname", 0).is_err());
    }
}
