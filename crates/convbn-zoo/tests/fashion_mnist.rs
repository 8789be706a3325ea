//! The fetched Fashion-MNIST IDX files read with the right shapes and labels.

mod common;

use convbn_zoo::data::idx::read_idx;

#[test]
fn fashion_mnist_files_have_the_published_shapes() {
    for (name, dims) in [
        ("fashion-mnist-train-images", vec![60_000, 28, 28]),
        ("fashion-mnist-train-labels", vec![60_000]),
        ("fashion-mnist-test-images", vec![10_000, 28, 28]),
        ("fashion-mnist-test-labels", vec![10_000]),
    ] {
        let Some(path) = common::asset(name) else {
            return;
        };
        let a = read_idx(&path).unwrap();
        assert_eq!(a.dims, dims, "{name}");
        if dims.len() == 1 {
            let mut counts = [0usize; 10];
            for &l in &a.data {
                counts[l as usize] += 1;
            }
            // Fashion-MNIST is balanced: 6,000 (train) or 1,000 (test) items per class.
            assert!(
                counts.iter().all(|&c| c == dims[0] / 10),
                "{name}: {counts:?}"
            );
        }
    }
}

#[test]
fn a_corrupted_idx_file_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!("convbn-bad-{}.idx", std::process::id()));
    std::fs::write(&path, [0u8, 0, 8, 1, 0, 0, 0, 9, 1, 2]).unwrap();
    let err = read_idx(&path).unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("holds 2"),
        "{err}"
    );
}
