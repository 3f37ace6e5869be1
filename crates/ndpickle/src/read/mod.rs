//! The safe pickle reader (a VM that executes nothing). Implemented under issue 3.
