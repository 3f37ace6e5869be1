//! Atomic file replacement (DESIGN §5): a file is written to a temporary file in the
//! target's directory and renamed over the target only once it is complete, so a write
//! that fails part-way (an error while pickling, a full disk, a size limit) leaves the old
//! file as it was and no temporary behind.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// A file being written in place of `target`: [`AtomicFile::commit`] renames it over the
/// target; dropping it uncommitted deletes it.
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// A new, empty temporary file beside `target` (named `.<target name>.<random>.tmp`),
    /// with the permissions a newly created `target` would get (or those of the existing
    /// `target`).
    pub fn create(target: impl AsRef<Path>) -> io::Result<AtomicFile> {
        let target = target.as_ref().to_path_buf();
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", target.display()),
            )
        })?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile wraps the OS error in its own (naming the temporary file); keep the OS
        // error of the last attempt to report it for the target.
        let last = std::cell::RefCell::new(None);
        let temp = builder
            .make_in(dir, |path| {
                let mut open = fs::OpenOptions::new();
                open.read(true).write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    // As `File::create` does: 0o666 less the umask, applied by the kernel.
                    open.mode(0o666);
                }
                open.open(path).inspect_err(|e| {
                    *last.borrow_mut() = e.raw_os_error().map(io::Error::from_raw_os_error);
                })
            })
            .map_err(|e| with_path(last.take().unwrap_or(e), &target))?;
        if let Ok(meta) = fs::metadata(&target) {
            fs::set_permissions(temp.path(), meta.permissions())?;
        }
        Ok(AtomicFile { temp, target })
    }

    /// Writes the file at `target` atomically: `write` streams its contents (through a
    /// buffer of `buffer` bytes), then the file is committed (see [`AtomicFile::commit`]).
    /// I/O errors name `target`; on any error the target is left as it was.
    pub fn write_with<E: From<io::Error> + IoCarrier>(
        target: impl AsRef<Path>,
        fsync: bool,
        buffer: usize,
        write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<(), E> {
        let target = target.as_ref();
        let mut file = AtomicFile::create(target)?;
        let mut w = BufWriter::with_capacity(buffer, file.file());
        write(&mut w).map_err(|e| e.name_path(target))?;
        w.flush().map_err(|e| with_path(e, target))?;
        drop(w);
        file.commit(fsync)?;
        Ok(())
    }

    /// The temporary file, to write to.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Renames the temporary file over the target; with `fsync`, first flushes the file to
    /// the device, and then the directory entry.
    pub fn commit(self, fsync: bool) -> io::Result<()> {
        if fsync {
            self.temp.as_file().sync_all()?;
        }
        let target = self.target;
        self.temp
            .persist(&target)
            .map_err(|e| with_path(e.error, &target))?;
        #[cfg(unix)]
        if fsync && let Some(dir) = target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// An error type that can carry an [`io::Error`] (which then learns the file's path).
pub trait IoCarrier: Sized {
    /// `self`, its I/O error (if it is one) naming `path`.
    fn name_path(self, path: &Path) -> Self;
}

impl IoCarrier for io::Error {
    fn name_path(self, path: &Path) -> io::Error {
        with_path(self, path)
    }
}

impl IoCarrier for crate::EncodeError {
    fn name_path(self, path: &Path) -> crate::EncodeError {
        match self {
            crate::EncodeError::Io(e) => crate::EncodeError::Io(with_path(e, path)),
            e => e,
        }
    }
}

/// `e` naming `path` (its kind and OS error code kept), as `open` errors name their file.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    crate::error::PathIoError::wrap(e, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many entries `dir` holds.
    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn commit_replaces_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data.pkl");
        fs::write(&target, b"old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.file().write_all(b"half").unwrap();
        assert!(f.temp_path().starts_with(dir.path()));
        assert_eq!(count(dir.path()), 2);
        drop(f);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(count(dir.path()), 1);
        for fsync in [false, true] {
            let mut f = AtomicFile::create(&target).unwrap();
            f.file().write_all(b"new").unwrap();
            f.commit(fsync).unwrap();
            assert_eq!(fs::read(&target).unwrap(), b"new");
            assert_eq!(count(dir.path()), 1);
        }
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = AtomicFile::create("/nonexistent-dir/x.pkl").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let inner = crate::error::PathIoError::of(&err).unwrap();
        assert_eq!(inner.source.raw_os_error(), Some(2));
        assert!(err.to_string().contains("/nonexistent-dir/x.pkl"), "{err}");
        let err = AtomicFile::create("/").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_follow_the_existing_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p.pkl");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        AtomicFile::create(&target).unwrap().commit(false).unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
