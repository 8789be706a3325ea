//! Running the `convbn` binary in tests.

#![allow(dead_code)]

use std::process::{Command, Output};

pub fn convbn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convbn"))
        .args(args)
        .output()
        .expect("run convbn")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An asset's cached path, fetched first when missing (`None`: skipped under
/// `CONVBN_SKIP_ASSETS=1`; see `convbn_zoo::assets::for_test`).
pub fn cached(name: &str) -> Option<String> {
    convbn_zoo::assets::for_test(name).map(|p| p.display().to_string())
}
