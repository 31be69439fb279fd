//! Dataset listings: the media files under a local folder or a URL prefix,
//! and ImageNet-style class folders as (source, label) pairs.
//!
//! Both kinds of root give the same result shape, sorted by path, so the
//! order (and therefore a seeded shuffle over it) is the same wherever the
//! data lives.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::source::path::has_extension;
#[cfg(feature = "remote")]
use crate::source::store::Store;
use crate::source::Source;

/// One listed file: its source and its path relative to the root.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatasetItem {
    /// Where to read it from.
    pub source: Source,
    /// The path under the root, with `/` separators (`n01440764/1.jpg`).
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
    /// Why the listing could not read this entry (a dangling symlink, a
    /// symlink loop, a folder without permission); `None` for a file. Such
    /// entries are listed whatever their extension, so a loader can report
    /// them instead of losing them silently.
    pub unreadable: Option<String>,
}

impl From<Source> for DatasetItem {
    /// A single source as a dataset item (size unknown: 0).
    fn from(source: Source) -> Self {
        DatasetItem {
            relative: source.name(),
            source,
            size: 0,
            unreadable: None,
        }
    }
}

/// A labelled dataset in class folders (`root/<class>/<file>`), as
/// torchvision's `ImageFolder`: classes sorted by name, labels their index.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClassFolders {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// Every file and its label, sorted by path.
    pub items: Vec<(DatasetItem, usize)>,
}

/// Whether `root` names object storage rather than a local path.
fn is_url(root: &str) -> bool {
    matches!(Source::from(root), Source::Remote { .. })
}

/// Lists the files under `root` (a folder or a URL prefix such as
/// `s3://bucket/train/`), recursively, keeping names that end with one of
/// `extensions` (case-insensitive; empty keeps all), sorted by path.
///
/// ```no_run
/// let items = spdl_io::list_dataset("fixtures/images", &["jpg", "png"])?;
/// for item in items.iter().take(3) {
///     println!("{} ({} bytes)", item.relative, item.size);
/// }
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// [`Error::NotFound`] if a local root does not exist; listing errors from
/// the store as `Store::list`.
pub fn list_dataset(root: &str, extensions: &[&str]) -> Result<Vec<DatasetItem>> {
    list_dataset_with(root, extensions, false)
}

/// [`list_dataset`], choosing whether symlinks may lead out of a local
/// root. By default (`external_links` false) a symlink to a file or folder
/// outside the root is listed as unreadable, saying why, so a dataset
/// cannot make the loader read files it does not hold; `true` follows them
/// (a dataset that links to shared storage, when it is trusted).
///
/// # Errors
/// As [`list_dataset`].
pub fn list_dataset_with(root: &str, extensions: &[&str], external_links: bool) -> Result<Vec<DatasetItem>> {
    if is_url(root) {
        return list_url(root, extensions);
    }
    let root_path = Path::new(root.strip_prefix("file://").unwrap_or(root));
    let name = root_path.display().to_string();
    let io = |e| Error::io(&name, e);
    let mut walker = Walker {
        root: (!external_links)
            .then(|| root_path.canonicalize())
            .transpose()
            .map_err(io)?,
        walked: HashSet::new(),
        files: Vec::new(),
    };
    walker.walk(root_path).map_err(io)?;
    let files = walker.files;
    let mut items: Vec<DatasetItem> = files
        .into_iter()
        .filter(|(p, _, unreadable)| unreadable.is_some() || has_extension(&p.to_string_lossy(), extensions))
        .map(|(path, size, unreadable)| DatasetItem {
            relative: relative_path(root_path, &path),
            source: Source::Path(path),
            size,
            unreadable,
        })
        .collect();
    items.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(items)
}

/// [`list_dataset`] of a URL prefix, through the default store for it.
#[cfg(feature = "remote")]
fn list_url(root: &str, extensions: &[&str]) -> Result<Vec<DatasetItem>> {
    list_store(&Store::for_url(root)?, root, extensions)
}

/// A URL in a build without the `remote` feature.
#[cfg(not(feature = "remote"))]
fn list_url(root: &str, _: &[&str]) -> Result<Vec<DatasetItem>> {
    Err(Error::InvalidConfig(format!(
        "{root}: listing a URL needs spdl-io's `remote` feature, which this build lacks"
    )))
}

/// [`list_dataset`] through a given store.
///
/// # Errors
/// As [`Store::list`].
#[cfg(feature = "remote")]
pub fn list_store(store: &Store, prefix: &str, extensions: &[&str]) -> Result<Vec<DatasetItem>> {
    Ok(store
        .list_blocking(prefix, extensions)?
        .into_iter()
        .map(|e| DatasetItem {
            source: store.source(&e.url),
            relative: e.relative,
            size: e.size,
            unreadable: None,
        })
        .collect())
}

/// Lists `root/<class>/...` (local or remote) as labelled items.
///
/// ```no_run
/// let data = spdl_io::class_folders("imagenet/train", &["jpeg", "jpg"])?;
/// println!("{} images in {} classes", data.items.len(), data.classes.len());
/// # Ok::<(), spdl_io::Error>(())
/// ```
///
/// # Errors
/// As [`list_dataset`]; a root with files but no class folders is
/// [`Error::InvalidConfig`].
pub fn class_folders(root: &str, extensions: &[&str]) -> Result<ClassFolders> {
    let items = list_dataset(root, extensions)?;
    let class_of = |item: &DatasetItem| item.relative.split_once('/').map(|(c, _)| c.to_string());
    let mut classes: Vec<String> = items.iter().filter_map(class_of).collect();
    classes.sort();
    classes.dedup();
    if classes.is_empty() && !items.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "{root}: no class folders (expected root/<class>/<file>)"
        )));
    }
    let items = items
        .into_iter()
        .filter_map(|item| {
            let label = classes.binary_search(&class_of(&item)?).ok()?;
            Some((item, label))
        })
        .collect();
    Ok(ClassFolders { classes, items })
}

fn relative_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A file found by a walk: path, size, and why it cannot be read.
type Walked = (PathBuf, u64, Option<String>);

/// A walk of a local dataset folder.
struct Walker {
    /// The canonical root symlinks must stay under; `None`: follow all.
    root: Option<PathBuf>,
    /// Folders walked, by (device, inode): a symlink loop is walked once.
    walked: HashSet<(u64, u64)>,
    files: Vec<Walked>,
}

impl Walker {
    /// Every regular file under `dir` with its size, following symlinks
    /// (within the root, unless external links are allowed) but never into
    /// a directory already walked. An entry that cannot be read is kept
    /// with the reason; only an unreadable `dir` itself is an error.
    fn walk(&mut self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir)?;
        if !self.walked.insert((meta.dev(), meta.ino())) {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if let Some(why) = self.outside_root(&entry) {
                self.files.push((path, 0, Some(why)));
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    if let Err(e) = self.walk(&path) {
                        self.files.push((path, 0, Some(e.to_string())));
                    }
                }
                Ok(meta) if meta.is_file() => self.files.push((path, meta.len(), None)),
                Ok(_) => {} // a pipe, socket or device: not media
                Err(e) => self.files.push((path, 0, Some(e.to_string()))),
            }
        }
        Ok(())
    }

    /// Why a symlink may not be followed: it leads out of the root.
    fn outside_root(&self, entry: &std::fs::DirEntry) -> Option<String> {
        let root = self.root.as_ref()?;
        if !entry.file_type().ok()?.is_symlink() {
            return None;
        }
        // A dangling link or a loop is reported by the walk itself.
        let target = entry.path().canonicalize().ok()?;
        (!target.starts_with(root)).then(|| {
            format!(
                "a symlink to {}, outside the dataset root: refused (list with external links allowed to read it)",
                target.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dangling symlink and a symlink loop are listed with why they
    /// cannot be read; a directory symlink loop is walked once.
    #[test]
    fn unreadable_entries_are_listed_and_loops_walked_once() {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("spdl-walk-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/good.jpg"), b"x").unwrap();
        symlink("/nonexistent/target.jpg", root.join("dangling.jpg")).unwrap();
        symlink(root.join("loop2.jpg"), root.join("loop1.jpg")).unwrap();
        symlink(root.join("loop1.jpg"), root.join("loop2.jpg")).unwrap();
        symlink("..", root.join("sub/up")).unwrap();
        let items = list_dataset(root.to_str().unwrap(), &["jpg"]).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        let listed: Vec<_> = items
            .iter()
            .map(|i| (i.relative.as_str(), i.unreadable.is_some()))
            .collect();
        assert_eq!(
            listed,
            [
                ("dangling.jpg", true),
                ("loop1.jpg", true),
                ("loop2.jpg", true),
                ("sub/good.jpg", false)
            ]
        );
    }

    /// A symlink out of the root is listed as refused, saying why, unless
    /// external links are allowed; one inside the root is followed.
    #[test]
    fn symlinks_out_of_the_root_are_refused_by_default() {
        use std::os::unix::fs::symlink;
        let base = std::env::temp_dir().join(format!("spdl-links-{}", std::process::id()));
        let (root, outside) = (base.join("data"), base.join("secret"));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("sub/in.jpg"), b"x").unwrap();
        std::fs::write(outside.join("key.jpg"), b"secret").unwrap();
        symlink(outside.join("key.jpg"), root.join("out.jpg")).unwrap();
        symlink(&outside, root.join("outdir")).unwrap();
        symlink(root.join("sub/in.jpg"), root.join("alias.jpg")).unwrap();
        let list = |external| {
            let items = list_dataset_with(root.to_str().unwrap(), &["jpg"], external).unwrap();
            items
                .into_iter()
                .map(|i| (i.relative, i.unreadable))
                .collect::<Vec<_>>()
        };
        let (default, trusted) = (list(false), list(true));
        std::fs::remove_dir_all(&base).unwrap();
        let names =
            |l: &[(String, Option<String>)]| l.iter().map(|(r, u)| (r.clone(), u.is_some())).collect::<Vec<_>>();
        let pairs = |v: &[(&str, bool)]| v.iter().map(|(r, u)| (r.to_string(), *u)).collect::<Vec<_>>();
        assert_eq!(
            names(&default),
            pairs(&[
                ("alias.jpg", false),
                ("out.jpg", true),
                ("outdir", true),
                ("sub/in.jpg", false)
            ])
        );
        assert!(default[1].1.as_deref().unwrap().contains("outside the dataset root"));
        assert_eq!(
            names(&trusted),
            pairs(&[
                ("alias.jpg", false),
                ("out.jpg", false),
                ("outdir/key.jpg", false),
                ("sub/in.jpg", false)
            ])
        );
    }

    #[test]
    fn class_folders_label_sorted_classes() {
        let root = std::env::temp_dir().join(format!("spdl-classes-{}", std::process::id()));
        for (class, file) in [("b", "2.jpg"), ("a", "1.JPG"), ("a", "x.txt"), ("c", "3.png")] {
            std::fs::create_dir_all(root.join(class)).unwrap();
            std::fs::write(root.join(class).join(file), b"x").unwrap();
        }
        let data = class_folders(root.to_str().unwrap(), &["jpg"]).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(data.classes, ["a", "b"]);
        let labelled: Vec<_> = data.items.iter().map(|(i, l)| (i.relative.as_str(), *l)).collect();
        assert_eq!(labelled, [("a/1.JPG", 0), ("b/2.jpg", 1)]);
    }

    #[test]
    fn a_missing_root_is_not_found() {
        let err = list_dataset("/no/such/dir", &[]).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
}
