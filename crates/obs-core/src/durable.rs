//! Files that survive a crash at any instant.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// Write a file so that a crash leaves either the old or the new content: temp file,
/// fsync, rename, fsync the folder.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a folder")?;
    let temporary = path.with_extension("tmp");
    let mut file =
        File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} into place", temporary.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
