//! The pickle writer.
