//! Parameter counts as PyTorch reports them.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::module_impl::CONTAINER;

/// Number of trainable scalars in `model`, as `sum(p.numel() for p in m.parameters())` counts
/// them in PyTorch: every float parameter except the BN running statistics of ConvBN blocks.
pub fn trainable_parameters<M: Module>(model: &M) -> usize {
    struct Counter {
        path: Vec<(String, bool)>,
        count: usize,
    }
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path
                .push((name.to_string(), container_type == CONTAINER));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let running = matches!(
                self.path.last(),
                Some((name, true)) if name == "running_mean" || name == "running_var"
            );
            if !running {
                self.count += param.val().shape().num_elements();
            }
        }
    }
    let mut counter = Counter {
        path: Vec::new(),
        count: 0,
    };
    model.visit(&mut counter);
    counter.count
}
