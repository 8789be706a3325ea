//! Agreement with PyTorch on the reference cases of `tests/fixtures/convbn_reference.*`
//! (or the directory named by `CONVBN_REFERENCE_DIR`): Eval, Train and Deploy match PyTorch to
//! 1e-4 (absolute or relative, whichever is looser) and Tune matches Eval.

mod common;
#[path = "suites/reference.rs"]
mod suite;

#[test]
fn every_reference_case_matches_pytorch_in_every_mode() {
    suite::every_reference_case_matches_pytorch_in_every_mode();
}
