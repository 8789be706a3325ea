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

/// A cached asset's path, or `None` (test skipped) unless `CONVBN_REQUIRE_ASSETS=1`.
pub fn cached(name: &str) -> Option<String> {
    let o = convbn(&["fetch"]);
    let listed = stdout(&o);
    let cached = listed
        .lines()
        .any(|l| l.split_whitespace().take(2).eq([name, "cached"]));
    if !cached {
        if std::env::var_os("CONVBN_REQUIRE_ASSETS").is_some_and(|v| v == "1") {
            panic!("asset {name} missing; run `convbn fetch {name}`");
        }
        eprintln!("SKIPPED: asset {name} is not cached; run `convbn fetch {name}`");
        return None;
    }
    let o = convbn(&["fetch", name]);
    stdout(&o).split_whitespace().nth(1).map(str::to_string)
}
