//! Files written safely: atomic and durable replacement, clean-up of temporary files that a
//! killed or failed writer left behind, and an exclusive lock on a run directory.
//!
//! A write goes to `.NAME.partial-PID` beside the target, is flushed to disk (`fsync`), renamed
//! over the target, and the directory is flushed too, so after a crash the target holds either
//! the old or the new bytes, never a mix. Every error path removes the temporary file; a writer
//! killed outright (SIGKILL, power loss) leaves one behind, which [`remove_stale_partials`]
//! deletes once its process is gone.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ZooError;

/// The marker in temporary file names: `.NAME.partial-PID`.
const PARTIAL: &str = ".partial-";

/// The temporary file a write of `path` by process `pid` goes through.
fn partial_path(path: &Path, pid: u32) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    dir.join(format!(".{name}{PARTIAL}{pid}"))
}

/// Write `bytes` to `path` through a temporary file, `fsync` and a rename, so a reader never
/// sees a partial file, an existing good file is only replaced by a complete one, and the new
/// file survives a crash once this returns. On any error the temporary file is removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ZooError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| ZooError::io(dir, e))?;
    let tmp = partial_path(path, std::process::id());
    // Errors name the file being written, not its temporary twin.
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })()
    .map_err(|e| ZooError::io(path, e));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ZooError::io(dir, e))
}

/// Whether process `pid` is alive on this machine.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true // unknown: keep the file
    }
}

/// Delete the temporary files in `dir` that writers which no longer run left behind (a killed
/// process, a full disk in an older version). Returns the files removed.
pub fn remove_stale_partials(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(PARTIAL))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// An exclusive lock on a run directory, held until dropped: two runs on one `--out` cannot
/// both write it. The lock is the operating system's (`flock`), so it is released when the
/// process ends however it ends, and a stale lock file never blocks a later run. A run that
/// ends without writing anything leaves no trace: the lock file (and the directory, if the
/// lock created it) is removed when the directory holds nothing else.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    created: bool,
}

impl DirLock {
    /// The lock file's name inside a locked directory.
    pub const FILE: &'static str = ".convbn.lock";

    /// Lock `dir` (created if needed) or fail at once, naming the directory, when another
    /// process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, ZooError> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| ZooError::io(dir, e))?;
        let path = dir.join(Self::FILE);
        // A lock file removed by its last holder while we opened it is locked in vain: lock
        // again until the file we hold is the one at the path.
        for _ in 0..8 {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(ZooError::Busy(format!(
                        "{} is in use by another convbn run (it holds {}); wait for it to \
                         finish or choose another --out",
                        dir.display(),
                        path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(ZooError::io(&path, e)),
            }
            if same_file(&file, &path) {
                let _ = file.set_len(0);
                let _ = writeln!(&file, "{}", std::process::id());
                return Ok(Self {
                    file,
                    path,
                    created,
                });
            }
        }
        Err(ZooError::Busy(format!(
            "{} keeps changing hands; try again",
            dir.display()
        )))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Open (creating, never truncating) the file at `path` whose OS lock guards something: a run
/// directory ([`DirLock`]) or the asset cache's fetches.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, ZooError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| ZooError::io(path, e))
}

/// Whether the open `file` is the file at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let only_lock = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .all(|e| e.file_name() == std::ffi::OsStr::new(Self::FILE))
            })
            .unwrap_or(false);
        // Still held here: nobody else can be using the directory.
        if only_lock && same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
            if self.created {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("convbn-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_keeps_the_old_file() {
        let dir = scratch("fail");
        let target = dir.join("a.json");
        write_atomically(&target, b"old").unwrap();
        // A directory where the file should be: the rename fails after the data was written.
        let blocked = dir.join("sub");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(PARTIAL))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn stale_partials_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = scratch("stale");
        // pid_max is at most 2^22 on Linux: this process cannot exist.
        let dead = partial_path(&dir.join("checkpoint.safetensors"), 4_194_304 + 7);
        let mine = partial_path(&dir.join("log.json"), std::process::id());
        std::fs::write(&dead, b"half").unwrap();
        std::fs::write(&mine, b"half").unwrap();
        std::fs::write(dir.join("keep.partial-1"), b"not ours").unwrap();
        assert_eq!(remove_stale_partials(&dir), vec![dead.clone()]);
        assert!(!dead.exists() && mine.exists() && dir.join("keep.partial-1").exists());
    }

    #[test]
    fn a_locked_directory_refuses_a_second_lock_until_released() {
        let dir = scratch("lock");
        let first = DirLock::acquire(&dir).unwrap();
        let second = DirLock::acquire(&dir).unwrap_err().to_string();
        assert!(second.contains("in use by another convbn run"), "{second}");
        std::fs::write(dir.join("log.json"), b"{}").unwrap();
        drop(first);
        let again = DirLock::acquire(&dir).unwrap();
        assert!(
            again.path().exists(),
            "a directory with a run in it keeps its lock file"
        );
    }

    #[test]
    fn a_run_that_wrote_nothing_leaves_no_trace() {
        let dir = scratch("trace").join("new-run");
        let lock = DirLock::acquire(&dir).unwrap();
        assert!(lock.path().exists());
        drop(lock);
        assert!(!dir.exists(), "the directory the lock created is gone");
    }
}
