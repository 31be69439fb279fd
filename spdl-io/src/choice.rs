//! Config enums by name: one parser behind the `FromStr` of every enum a
//! user passes as text (the CLI's flags, Python's keyword arguments), so
//! every front end accepts the same names and gives the same error.

use crate::error::{Error, Result};

/// The value named `s` among `choices` (name, value), or an
/// [`Error::InvalidConfig`] naming `what`, `s` and the accepted names.
pub(crate) fn parse<T: Copy>(what: &str, s: &str, choices: &[(&str, T)]) -> Result<T> {
    match choices.iter().find(|(name, _)| *name == s) {
        Some(&(_, value)) => Ok(value),
        None => {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            Err(Error::InvalidConfig(format!(
                "unknown {what} {s:?} (expected {})",
                names.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_values_and_others_list_the_choices() {
        let choices = [("a", 1), ("b", 2)];
        assert_eq!(parse("letter", "b", &choices).unwrap(), 2);
        let err = parse("letter", "c", &choices).unwrap_err().to_string();
        assert!(err.contains("unknown letter \"c\" (expected a, b)"), "{err}");
    }
}
