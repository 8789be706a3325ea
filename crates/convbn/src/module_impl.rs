//! burn [`Module`] implementation of [`ConvBn`], written by hand so that a mapper which sets
//! the `deploy` flag (see [`crate::set_mode`]) folds the block, and so that inference
//! (`valid()`) never un-folds it.
//!
//! Every field is visited and mapped under the container type [`CONTAINER`], exactly as
//! `#[derive(Module)]` would, so records, parameter paths and generic mappers behave as usual.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

use crate::block::ConvBn;

/// The container type under which the fields of every [`ConvBn`] are visited.
pub const CONTAINER: &str = "Struct:ConvBn";

/// After its fields, every [`ConvBn`] shows visitors (not mappers) an empty pseudo-module of
/// this container type whose name is BN's `eps` (`"0.00001"`): the one constant that
/// model-wide tools such as [`scales`](crate::scales) need and cannot read from a parameter.
/// It holds nothing, so path-tracking visitors just push and pop it.
pub const EPS_CONTAINER: &str = "ConvBn:eps";

/// Apply `$body` to every module field of a block by value and rebuild it; `$name` is bound to
/// the field's name.
macro_rules! rebuild {
    ($block:expr, |$name:ident, $field:ident| $body:expr) => {{
        let ConvBn {
            weight,
            bias,
            gamma,
            beta,
            running_mean,
            running_var,
            training,
            tune,
            deploy,
            options,
        } = $block;
        ConvBn {
            weight: {
                let ($name, $field) = ("weight", weight);
                $body
            },
            bias: {
                let ($name, $field) = ("bias", bias);
                $body
            },
            gamma: {
                let ($name, $field) = ("gamma", gamma);
                $body
            },
            beta: {
                let ($name, $field) = ("beta", beta);
                $body
            },
            running_mean: {
                let ($name, $field) = ("running_mean", running_mean);
                $body
            },
            running_var: {
                let ($name, $field) = ("running_var", running_var);
                $body
            },
            training: {
                let ($name, $field) = ("training", training);
                $body
            },
            tune: {
                let ($name, $field) = ("tune", tune);
                $body
            },
            deploy: {
                let ($name, $field) = ("deploy", deploy);
                $body
            },
            options,
        }
    }};
}

/// Apply `$body` to a reference to every module field of a block.
macro_rules! for_each {
    ($block:expr, |$name:ident, $field:ident| $body:expr) => {{
        {
            let ($name, $field) = ("weight", &$block.weight);
            $body;
        }
        {
            let ($name, $field) = ("bias", &$block.bias);
            $body;
        }
        {
            let ($name, $field) = ("gamma", &$block.gamma);
            $body;
        }
        {
            let ($name, $field) = ("beta", &$block.beta);
            $body;
        }
        {
            let ($name, $field) = ("running_mean", &$block.running_mean);
            $body;
        }
        {
            let ($name, $field) = ("running_var", &$block.running_var);
            $body;
        }
        {
            let ($name, $field) = ("training", &$block.training);
            $body;
        }
        {
            let ($name, $field) = ("tune", &$block.tune);
            $body;
        }
        {
            let ($name, $field) = ("deploy", &$block.deploy);
            $body;
        }
    }};
}

impl<const R: usize> Module for ConvBn<R> {
    fn collect_devices(&self, mut devices: Devices) -> Devices {
        for_each!(self, |_name, field| devices =
            Module::collect_devices(field, devices));
        devices
    }

    fn fork(self, device: &Device) -> Self {
        rebuild!(self, |_name, field| Module::fork(field, device))
    }

    fn to_device(self, device: &Device) -> Self {
        rebuild!(self, |_name, field| Module::to_device(field, device))
    }

    fn train(self) -> Self {
        let deploy = self.deploy.clone();
        let mut block = rebuild!(self, |_name, field| Module::train(field));
        block.deploy = deploy;
        block
    }

    fn valid(&self) -> Self {
        // Inference turns Train and Tune into Eval (same outputs); a folded block stays folded.
        let mut block = rebuild!(self.clone(), |_name, field| Module::valid(&field));
        block.deploy = self.deploy.clone();
        block
    }

    fn materialize(self) -> Self {
        rebuild!(self, |_name, field| Module::materialize(field))
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.sync_running_stats();
        for_each!(self, |name, field| {
            visitor.enter_module(name, CONTAINER);
            Module::visit(field, visitor);
            visitor.exit_module(name, CONTAINER);
        });
        // BN's epsilon is a constant, not a parameter: announce it to visitors (see
        // `EPS_CONTAINER`) so model-wide tools can compute `gamma / sqrt(var + eps)`.
        let eps = self.options.eps.to_string();
        visitor.enter_module(&eps, EPS_CONTAINER);
        visitor.exit_module(&eps, EPS_CONTAINER);
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        self.sync_running_stats();
        let mut block = rebuild!(self, |name, field| {
            mapper.enter_module(name, CONTAINER);
            let field = Module::map(field, mapper);
            mapper.exit_module(name, CONTAINER);
            field
        });
        if block.options.folded {
            // Folding is irreversible whatever a mapper did to the flags.
            block.deploy = block.deploy.with_value(true);
        } else if block.deploy.is_enabled() && block.fold_in_place().is_err() {
            // Unusable statistics: stay unfolded. `set_mode` reports this before mapping.
            block.deploy = block.deploy.with_value(false);
        }
        block
    }
}

impl<const R: usize> ConvBn<R> {
    /// Merge this thread's pending Train-mode update of the running statistics, so visitors,
    /// mappers and records see the latest values (burn's `RunningState` defers updates).
    fn sync_running_stats(&self) {
        self.running_mean.value_sync();
        self.running_var.value_sync();
    }
}

impl<const R: usize> ModuleDisplayDefault for ConvBn<R> {
    fn content(&self, content: Content) -> Option<Content> {
        let o = &self.options;
        content
            .set_top_level_type(&format!("ConvBn{}d", R - 2))
            .add("in_channels", &o.in_channels)
            .add("out_channels", &o.out_channels)
            .add_debug_attribute("kernel_size", &o.kernel_size)
            .add_debug_attribute("stride", &o.geometry.stride)
            .add_debug_attribute("padding", &o.geometry.padding)
            .add_debug_attribute("dilation", &o.geometry.dilation)
            .add("groups", &o.geometry.groups)
            .add("eps", &o.eps)
            .add("mode", &self.mode().to_string())
            .optional()
    }
}

impl<const R: usize> ModuleDisplay for ConvBn<R> {}
