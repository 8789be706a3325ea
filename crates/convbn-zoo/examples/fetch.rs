//! Fetch assets into the cache: `cargo run -p convbn-zoo --example fetch -- NAME...`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for name in std::env::args().skip(1) {
        for asset in convbn_zoo::assets::expand(&name)? {
            println!("{} -> {}", asset.name, asset.fetch()?.display());
        }
    }
    Ok(())
}
