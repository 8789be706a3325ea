//! Plain (non-autodiff) backends use the default, composed body of [`TuneConvOps`].

#[cfg(feature = "flex")]
impl super::TuneConvOps for burn::backend::Flex {}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
impl super::TuneConvOps for burn_cubecl::CubeBackend {}
