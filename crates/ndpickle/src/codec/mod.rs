//! Per-buffer compression codecs. Implemented under issue 5.
