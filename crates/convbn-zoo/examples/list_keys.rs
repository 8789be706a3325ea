//! List the tensors of a checkpoint: `cargo run -p convbn-zoo --example list_keys FILE`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: list_keys FILE")?;
    let ckpt = convbn_zoo::checkpoint::Checkpoint::open(&path)?;
    for (name, e) in &ckpt.tensors {
        println!("{name} {:?}", e.shape);
    }
    println!("ignored: {}", ckpt.ignored.len());
    Ok(())
}
