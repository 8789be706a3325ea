//! Output file names, one per input: two inputs with the same file stem (`a/good.png`,
//! `b/good.jpg`) must not write to the same output file.

use std::collections::HashSet;

/// Hands out names that no earlier call returned: the first `good` stays `good`, later ones
/// become `good_2`, `good_3`, ... (skipping any name already taken).
#[derive(Debug, Default)]
pub struct UniqueNames {
    taken: HashSet<String>,
}

impl UniqueNames {
    /// A name for `stem` not handed out before.
    pub fn claim(&mut self, stem: &str) -> String {
        let mut name = stem.to_string();
        let mut n = 1;
        while self.taken.contains(&name) {
            n += 1;
            name = format!("{stem}_{n}");
        }
        self.taken.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_stems_get_distinct_names_in_input_order() {
        let mut names = UniqueNames::default();
        let got: Vec<String> = ["good", "good", "good_2", "bad", "good"]
            .iter()
            .map(|s| names.claim(s))
            .collect();
        assert_eq!(got, ["good", "good_2", "good_2_2", "bad", "good_3"]);
    }
}
