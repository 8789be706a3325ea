//! One source of truth for a block's outside view: no source file of the workspace spells a
//! `ConvBn` field name as a string literal except the block's own module
//! (`crates/convbn/src/block/`), so renaming a field cannot silently break a visitor, the
//! checkpoint loader or a count. Tests are not scanned (their fixtures use PyTorch's names);
//! `"weight"`/`"bias"` on a line naming burn's `Linear` are that module's fields, not ours.

use std::path::{Path, PathBuf};

const FIELDS: [&str; 6] = [
    "weight",
    "bias",
    "gamma",
    "beta",
    "running_mean",
    "running_var",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file, line number, literal)` of every field-name literal in the `src` folders under
/// `crates`, outside `allowed`.
fn literals(crates: &Path, allowed: &Path) -> Vec<(PathBuf, usize, &'static str)> {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(crates).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(allowed)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for field in FIELDS {
                let linear = matches!(field, "weight" | "bias") && code.contains("Linear");
                if code.contains(&format!("\"{field}\"")) && !linear {
                    found.push((file.clone(), i + 1, field));
                }
            }
        }
    }
    found
}

#[test]
fn no_block_field_name_outside_the_block_module() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let crates = manifest.parent().unwrap().to_path_buf();
    let block = manifest.join("src/block");
    // The scan sees the names where they do live.
    let inside = literals(&crates, Path::new("/nonexistent"));
    for field in FIELDS {
        assert!(
            inside
                .iter()
                .any(|(f, _, name)| *name == field && f.starts_with(&block)),
            "the scan does not find \"{field}\" in {}",
            block.display()
        );
    }
    let outside = literals(&crates, &block);
    assert!(
        outside.is_empty(),
        "ConvBn field names spelled outside crates/convbn/src/block/ (use convbn::BlockField): \
         {outside:#?}"
    );
}
