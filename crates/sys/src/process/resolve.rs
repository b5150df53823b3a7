//! Finding a container's command before anything is created: `PATH` search inside the
//! container's root, with symlinks resolved as the container would see them (`openat2`
//! with `RESOLVE_IN_ROOT`), so a bad command is refused up front with a clear error.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::ProcessError;

/// Candidate paths (inside the root) for `program` under `path`.
pub(crate) fn candidates(program: &str, path: &str) -> Vec<String> {
    if program.contains('/') {
        // Relative paths are relative to the container's working directory, its root.
        let rel = program.trim_start_matches("./").trim_start_matches('/');
        return vec![format!("/{rel}")];
    }
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .collect()
}

fn open_root(root: &Path) -> Result<OwnedFd, ProcessError> {
    let c = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| ProcessError::Invalid(format!("path {} contains NUL", root.display())))?;
    // SAFETY: c is a valid C string; the fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(ProcessError::sys(
            format!("open root directory {}", root.display()),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `rel` (inside `root`) is a regular file with an execute bit.
fn executable(root: &OwnedFd, rel: &str) -> bool {
    let Ok(c) = CString::new(rel.trim_start_matches('/')) else {
        return false;
    };
    // SAFETY: open_how is plain data; zeroed is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT;
    // SAFETY: valid pointers for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: openat2 returned a new fd that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: st is written by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0
}

/// The path (as the container sees it) of the file `program` names, searched in `path`
/// inside `root`.
pub fn resolve_command(root: &Path, program: &str, path: &str) -> Result<String, ProcessError> {
    if program.is_empty() {
        return Err(ProcessError::Invalid("the command is empty".into()));
    }
    let fd = open_root(root)?;
    candidates(program, path)
        .into_iter()
        .find(|c| executable(&fd, c))
        .ok_or_else(|| ProcessError::CommandNotFound {
            program: program.to_string(),
            root: root.display().to_string(),
            path: path.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path() {
        assert_eq!(
            candidates("sh", "/usr/bin:relative:/bin/"),
            ["/usr/bin/sh", "/bin/sh"]
        );
        assert_eq!(candidates("/bin/sh", "/x"), ["/bin/sh"]);
        assert_eq!(candidates("./run.sh", "/x"), ["/run.sh"]);
    }

    #[test]
    fn resolves_inside_a_root_with_absolute_symlinks() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = std::env::temp_dir().join(format!("nsnet-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let tool = dir.join("bin/tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("bin/data"), "x").unwrap();
        // Absolute symlink: must resolve inside the root, not on the host.
        symlink("/bin/tool", dir.join("bin/alias")).unwrap();
        assert_eq!(resolve_command(&dir, "tool", "/bin").unwrap(), "/bin/tool");
        assert_eq!(
            resolve_command(&dir, "alias", "/bin").unwrap(),
            "/bin/alias"
        );
        assert_eq!(resolve_command(&dir, "/bin/tool", "").unwrap(), "/bin/tool");
        let err = resolve_command(&dir, "data", "/bin").unwrap_err();
        assert!(matches!(err, ProcessError::CommandNotFound { .. }), "{err}");
        let err = resolve_command(&dir, "sh", "/usr/bin:/bin").unwrap_err();
        assert!(err.to_string().contains("\"sh\" not found"), "{err}");
        let err = resolve_command(&dir.join("missing"), "sh", "/bin").unwrap_err();
        assert!(err.to_string().contains("open root directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
