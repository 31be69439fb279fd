//! Names of files and objects: extension matching shared by dataset
//! listings, object-store listings and backend choice.

/// Whether `name` ends with `.ext` for one of `extensions` (all if empty;
/// case-insensitive; a leading dot in an extension is ignored).
pub(crate) fn has_extension(name: &str, extensions: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    extensions.is_empty()
        || extensions
            .iter()
            .any(|e| lower.ends_with(&format!(".{}", e.trim_start_matches('.').to_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_match_case_insensitively() {
        assert!(has_extension("a/B.JPG", &["jpg", ".png"]));
        assert!(!has_extension("a/b.jpeg", &["jpg"]));
        assert!(has_extension("a/b", &[]));
    }
}
