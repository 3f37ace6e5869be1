//! A tiny test-only pickle builder: opcodes by hand, no writer involved.

#![allow(dead_code, unreachable_pub)]

use ndpickle::opcodes::*;

/// Builds a pickle byte by byte.
#[derive(Default, Clone)]
pub struct P(pub Vec<u8>);

impl P {
    pub fn new(proto: u8) -> P {
        let mut p = P(Vec::new());
        if proto >= 2 {
            p.0.extend([PROTO, proto]);
        }
        p
    }
    pub fn op(mut self, op: u8) -> P {
        self.0.push(op);
        self
    }
    pub fn raw(mut self, b: &[u8]) -> P {
        self.0.extend_from_slice(b);
        self
    }
    pub fn int(mut self, i: i64) -> P {
        if (0..256).contains(&i) {
            self.0.extend([BININT1, i as u8]);
        } else if let Ok(v) = i32::try_from(i) {
            self.0.push(BININT);
            self.0.extend(v.to_le_bytes());
        } else {
            self.0.extend([LONG1, 8]);
            self.0.extend(i.to_le_bytes());
        }
        self
    }
    pub fn str(mut self, s: &str) -> P {
        if s.len() < 256 {
            self.0.extend([SHORT_BINUNICODE, s.len() as u8]);
        } else {
            self.0.push(BINUNICODE);
            self.0.extend((s.len() as u32).to_le_bytes());
        }
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> P {
        self.0.push(BINBYTES8);
        self.0.extend((b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn bytearray(mut self, b: &[u8]) -> P {
        self.0.push(BYTEARRAY8);
        self.0.extend((b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn global(mut self, module: &str, name: &str) -> P {
        self.0.push(GLOBAL);
        self.0.extend_from_slice(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'\n');
        self
    }
    pub fn stack_global(self, module: &str, name: &str) -> P {
        self.str(module).str(name).op(STACK_GLOBAL)
    }
    pub fn put(mut self, i: u32) -> P {
        self.0.push(LONG_BINPUT);
        self.0.extend(i.to_le_bytes());
        self
    }
    pub fn get(mut self, i: u32) -> P {
        self.0.push(LONG_BINGET);
        self.0.extend(i.to_le_bytes());
        self
    }
    /// `numpy.dtype(spec, False, True)` without state.
    pub fn dtype(self, spec: &str) -> P {
        self.stack_global("numpy", "dtype")
            .str(spec)
            .op(NEWFALSE)
            .op(NEWTRUE)
            .op(TUPLE3)
            .op(REDUCE)
    }
    /// A tuple of small ints.
    pub fn shape(self, dims: &[i64]) -> P {
        let mut p = self.op(MARK);
        for &d in dims {
            p = p.int(d);
        }
        p.op(TUPLE)
    }
    pub fn stop(self) -> Vec<u8> {
        let mut v = self.0;
        v.push(STOP);
        v
    }
}
