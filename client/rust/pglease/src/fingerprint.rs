//! The fingerprint of a suite's own migrations: a SHA-256 of the files it names. The Python,
//! JavaScript and Go packages compute the same value for the same files, so suites in several
//! languages can share one template version.

use std::fs;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Directories never walked into (besides hidden ones).
const SKIPPED_DIRS: &[&str] = &["__pycache__", ".git", "node_modules", ".venv", ".pytest_cache"];

/// The files `paths` name, relative to `base`, sorted by that name: files as they are,
/// directories walked (hidden entries, caches and `.pyc` files left out; symbolic links to
/// directories not followed). Each comes with its name, `/`-separated.
pub fn migration_files(paths: &[impl AsRef<Path>], base: impl AsRef<Path>) -> Result<Vec<(String, PathBuf)>> {
    let base = base.as_ref();
    let mut found = Vec::new();
    for entry in paths {
        let path = base.join(entry.as_ref());
        let metadata = fs::metadata(&path).map_err(|source| Error::Io {
            path: format!(
                "migration file or directory {:?} (relative to {})",
                entry.as_ref().display().to_string(),
                base.display()
            ),
            source,
        })?;
        if metadata.is_dir() {
            walk(&path, &mut found)?;
        } else {
            found.push(path);
        }
    }
    let mut named = Vec::with_capacity(found.len());
    for path in found {
        named.push((relative_name(&path, base)?, path));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.dedup_by(|a, b| a.0 == b.0);
    Ok(named)
}

fn walk(directory: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io { path: directory.display().to_string(), source };
    for entry in fs::read_dir(directory).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().map_err(io)?;
        // A link counts as what it points to; a link to a directory is not walked into.
        let is_dir =
            if kind.is_symlink() { fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) } else { kind.is_dir() };
        if is_dir {
            if !kind.is_symlink() && !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                walk(&entry.path(), found)?;
            }
        } else if !name.starts_with('.') && !name.ends_with(".pyc") {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// `path` relative to `base`, lexically (as `os.path.relpath`), `/`-separated.
fn relative_name(path: &Path, base: &Path) -> Result<String> {
    let cwd = std::env::current_dir().map_err(|source| Error::Io { path: ".".into(), source })?;
    let path = normalize(&cwd.join(path));
    let base = normalize(&cwd.join(base));
    let common = path.iter().zip(base.iter()).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); base.len() - common];
    for part in &path[common..] {
        let text = part.to_str().ok_or_else(|| Error::Io {
            path: path.iter().collect::<PathBuf>().display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file name is not UTF-8"),
        })?;
        parts.push(text.to_owned());
    }
    Ok(if parts.is_empty() { ".".into() } else { parts.join("/") })
}

fn normalize(path: &Path) -> Vec<std::ffi::OsString> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts
}

/// 64 hex digits: the SHA-256 of `command` and of each file's name (relative to `base`) and
/// contents, so that a change to either builds a new template version.
pub fn fingerprint(paths: &[impl AsRef<Path>], base: impl AsRef<Path>, command: &str) -> Result<String> {
    let mut digest = Sha256::new();
    digest.update(b"pglease-fingerprint-v1\0command\0");
    digest.update(command.as_bytes());
    digest.update(b"\0");
    for (name, path) in migration_files(paths, base)? {
        let content = fs::read(&path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        digest.update(format!("file\0{name}\0{}\0", content.len()).as_bytes());
        digest.update(&content);
    }
    Ok(digest.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of this test's own, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("pglease-fp-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn write(&self, name: &str, content: &str) {
            let path = self.0.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn layout(name: &str) -> Scratch {
        let dir = Scratch::new(name);
        dir.write("migrations/0001_accounts.sql", "CREATE TABLE accounts (id bigserial PRIMARY KEY);\n");
        dir.write("migrations/0002_tasks.sql", "CREATE TABLE tasks (id bigserial PRIMARY KEY);\n");
        dir.write("migrations/nested/0003_seed.sql", "INSERT INTO accounts DEFAULT VALUES;\n");
        dir.write("migrations/.hidden.sql", "ignored");
        dir.write("migrations/.cache/x.sql", "ignored");
        dir.write("migrations/__pycache__/x.sql", "ignored");
        dir.write("migrations/node_modules/x.sql", "ignored");
        dir.write("migrations/compiled.pyc", "ignored");
        dir
    }

    /// The value the Python and JavaScript packages give for `layout`'s files:
    /// `fingerprint(["migrations"], base, "sqlx migrate run")`.
    const SHARED_VECTOR: &str = "e600a61bb2a35e276f8b8e6704a57ae9121f1d9a8bc59c2034e75bfbea41cf3d";

    #[test]
    fn files_are_named_relative_to_the_base_and_sorted() {
        let dir = layout("names");
        let names: Vec<String> =
            migration_files(&["migrations"], &dir.0).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["migrations/0001_accounts.sql", "migrations/0002_tasks.sql", "migrations/nested/0003_seed.sql"]
        );
        let one = migration_files(&["./migrations/0002_tasks.sql", "migrations"], &dir.0).unwrap();
        assert_eq!(one.len(), 3, "a file named twice counts once");
    }

    #[test]
    fn the_value_matches_the_other_languages() {
        let dir = layout("vector");
        assert_eq!(fingerprint(&["migrations"], &dir.0, "sqlx migrate run").unwrap(), SHARED_VECTOR);
    }

    #[test]
    fn any_change_of_name_content_or_command_changes_it() {
        let dir = layout("changes");
        let before = fingerprint(&["migrations"], &dir.0, "").unwrap();
        assert_eq!(before.len(), 64);
        assert_ne!(fingerprint(&["migrations"], &dir.0, "other").unwrap(), before);
        dir.write("migrations/.another-hidden", "x");
        assert_eq!(fingerprint(&["migrations"], &dir.0, "").unwrap(), before, "hidden files do not count");
        dir.write("migrations/0002_tasks.sql", "CREATE TABLE tasks ();\n");
        let edited = fingerprint(&["migrations"], &dir.0, "").unwrap();
        assert_ne!(edited, before);
        fs::rename(dir.0.join("migrations/0002_tasks.sql"), dir.0.join("migrations/0009_tasks.sql")).unwrap();
        assert_ne!(fingerprint(&["migrations"], &dir.0, "").unwrap(), edited);
    }

    #[test]
    fn a_missing_path_is_named() {
        let dir = Scratch::new("missing");
        let error = fingerprint(&["db/migrations"], &dir.0, "").unwrap_err().to_string();
        assert!(error.contains("\"db/migrations\""), "{error}");
    }
}
