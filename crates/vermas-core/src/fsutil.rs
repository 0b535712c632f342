//! File operations with the store's safety rules: files 0600, directories 0700, never follow a
//! symlink when writing, atomic replace for caches.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// True when an open with `O_NOFOLLOW` failed because the path is a symlink.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// An error that says the path is a symlink we will not write through.
pub fn symlink_error(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is a symbolic link; refusing to write through it",
            path.display()
        ),
    )
}

/// Makes sure `path` is a real directory (not a symlink), creating it 0700 if missing.
pub fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_error(path)),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ensure_dir(path),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// `base/rel` as a real directory: every level below `base` is checked (and made 0700 when
/// missing), so a symlink planted anywhere below `base` is refused, not written through.
/// `base` itself may be a link (a store moved to fast storage, as the guide suggests).
pub fn ensure_dir_under(base: &Path, rel: &Path) -> io::Result<std::path::PathBuf> {
    let mut p = base.to_path_buf();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => {
                p.push(n);
                ensure_dir(&p)?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a plain relative path", rel.display()),
                ));
            }
        }
    }
    Ok(p)
}

/// Like [`ensure_dir`] for every missing level of `path` (each made 0700, none a symlink).
pub fn ensure_dir_all(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    for a in path.ancestors() {
        match fs::symlink_metadata(a) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(a),
            Err(e) => return Err(e),
        }
    }
    for d in missing.into_iter().rev() {
        ensure_dir(d)?;
    }
    ensure_dir(path)
}

/// Opens for appending: `O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC`, mode 0600.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .read(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if is_symlink_refusal(&e) {
                symlink_error(path)
            } else {
                e
            }
        })
}

/// Opens (creating) a file for reading and writing without following symlinks, mode 0600.
pub fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if is_symlink_refusal(&e) {
                symlink_error(path)
            } else {
                e
            }
        })
}

/// Creates a new file that must not exist yet (`O_EXCL`), mode 0600.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Reads a whole file without following a symlink in its place.
pub fn read_no_follow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if is_symlink_refusal(&e) {
                symlink_error(path)
            } else {
                e
            }
        })?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// fsync a directory so a create or rename in it is durable.
pub fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Replaces `path` atomically: temp file in the same directory, fsync, rename, fsync directory.
/// A reader sees either the old or the new content, never a mix.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// Like [`atomic_write`] (readers see the old or the new content, never a mix) but without the
/// two fsyncs, for files that are rewritten at every start and whose loss a crash makes
/// harmless: they cost a millisecond and buy nothing there.
pub fn atomic_write_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        crate::ids::new_incarnation_id()
    ));
    let result = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        if let Ok(m) = fs::symlink_metadata(path)
            && m.file_type().is_symlink()
        {
            return Err(symlink_error(path));
        }
        fs::rename(&tmp, path)?;
        if durable { fsync_dir(dir) } else { Ok(()) }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        let err = open_append(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let dlink = dir.path().join("dlink");
        symlink(dir.path(), &dlink).unwrap();
        assert!(ensure_dir(&dlink).is_err());
        assert!(atomic_write(&link, b"y").is_err());
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn modes_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        ensure_dir(&d).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = d.join("f");
        drop(open_append(&f).unwrap());
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        atomic_write(&d.join("g"), b"hello").unwrap();
        assert_eq!(fs::read(d.join("g")).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(d.join("g")).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
