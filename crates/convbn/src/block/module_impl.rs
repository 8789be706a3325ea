//! burn [`Module`] implementation of [`ConvBn`], written by hand so that a block takes part in
//! the core's walks ([`crate::walk`]): a scan reads its view, a mode switch reaches its mode
//! (folding on Deploy), and inference (`valid()`) runs Train and Tune as Eval without ever
//! un-folding.
//!
//! Every tensor field is visited and mapped under the container type `Struct:ConvBn` with its
//! [`BlockField`] name, exactly as `#[derive(Module)]` would, so records, parameter paths and
//! generic mappers behave as usual. The mode is not a parameter: records leave it out.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

use super::{BlockField, ConvBn};
use crate::Mode;
use crate::walk::{self, CONTAINER};

/// Apply `$body` to every tensor field of a block by value and rebuild it; `$name` is bound to
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
            mode,
            suspended,
            options,
        } = $block;
        ConvBn {
            weight: {
                let ($name, $field) = (BlockField::Weight.name(), weight);
                $body
            },
            bias: {
                let ($name, $field) = (BlockField::Bias.name(), bias);
                $body
            },
            gamma: {
                let ($name, $field) = (BlockField::Gamma.name(), gamma);
                $body
            },
            beta: {
                let ($name, $field) = (BlockField::Beta.name(), beta);
                $body
            },
            running_mean: {
                let ($name, $field) = (BlockField::RunningMean.name(), running_mean);
                $body
            },
            running_var: {
                let ($name, $field) = (BlockField::RunningVar.name(), running_var);
                $body
            },
            mode,
            suspended,
            options,
        }
    }};
}

/// Apply `$body` to a reference to every tensor field of a block.
macro_rules! for_each {
    ($block:expr, |$name:ident, $field:ident| $body:expr) => {{
        {
            let ($name, $field) = (BlockField::Weight.name(), &$block.weight);
            $body;
        }
        {
            let ($name, $field) = (BlockField::Bias.name(), &$block.bias);
            $body;
        }
        {
            let ($name, $field) = (BlockField::Gamma.name(), &$block.gamma);
            $body;
        }
        {
            let ($name, $field) = (BlockField::Beta.name(), &$block.beta);
            $body;
        }
        {
            let ($name, $field) = (BlockField::RunningMean.name(), &$block.running_mean);
            $body;
        }
        {
            let ($name, $field) = (BlockField::RunningVar.name(), &$block.running_var);
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
        let mut block = rebuild!(self, |_name, field| Module::train(field));
        if let Some(mode) = block.suspended.take() {
            block.mode = mode;
        }
        block
    }

    fn valid(&self) -> Self {
        // Inference turns Train and Tune into Eval (same outputs); a folded block stays folded.
        let mut block = rebuild!(self.clone(), |_name, field| Module::valid(&field));
        if matches!(block.mode, Mode::Train | Mode::Tune) {
            block.suspended = Some(block.mode);
            block.mode = Mode::Eval;
        }
        block
    }

    fn materialize(self) -> Self {
        rebuild!(self, |_name, field| Module::materialize(field))
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.sync_running_stats();
        walk::announce(|| self.view());
        for_each!(self, |name, field| {
            visitor.enter_module(name, CONTAINER);
            Module::visit(field, visitor);
            visitor.exit_module(name, CONTAINER);
        });
        walk::withdraw();
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        self.sync_running_stats();
        let _stale = walk::take_request();
        let mut block = rebuild!(self, |name, field| {
            mapper.enter_module(name, CONTAINER);
            let field = Module::map(field, mapper);
            mapper.exit_module(name, CONTAINER);
            field
        });
        if let Some(mode) = walk::take_request() {
            block.switch_to(mode);
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
