"""ONNX fixtures for convbn's importer (run by bench/onnx_fixtures.sh).

Writes into OUT:
  mobilenet_v2.onnx   torchvision MobileNetV2 with the project's ImageNet weights
  resnet18.onnx       torchvision ResNet-18, seeded random weights and BN statistics
  resnet18.safetensors  those weights, torchvision names (for the zoo's ResNet-18)
  reference.safetensors  per model NAME: NAME.input, NAME.output (PyTorch, Eval mode);
                      ppocr_cls.input / ppocr_cls.output from onnx's ReferenceEvaluator
  manifest.json       versions, shapes, node counts of each exported graph
"""
import collections
import json
import struct
import sys
import warnings

import numpy as np
import onnx
import onnx.reference
import torch
import torchvision

warnings.simplefilter("ignore")
out, mobilenet_pth, ppocr_path = sys.argv[1:4]
torch.manual_seed(0)
torch.set_num_threads(max(1, torch.get_num_threads()))


def save_safetensors(path, tensors):
    """Minimal safetensors writer (F32, little endian), so no extra package is needed."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


def export(model, name, size):
    model.eval()
    x = torch.randn(2, 3, size, size)
    path = f"{out}/{name}.onnx"
    # Without constant folding the TorchScript exporter keeps BatchNormalization as its own
    # node (with folding it merges it into the Conv, which is what we must not get).
    torch.onnx.export(model, (x,), path, dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.EVAL, input_names=["input"],
                      output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    graph = onnx.load(path).graph
    onnx.checker.check_model(onnx.load(path))
    ops = collections.Counter(n.op_type for n in graph.node)
    producers = {o: n.op_type for n in graph.node for o in n.output}
    bn_after_conv = sum(1 for n in graph.node if n.op_type == "BatchNormalization" and producers.get(n.input[0]) == "Conv")
    batchnorms = sum(1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert ops["BatchNormalization"] == batchnorms == bn_after_conv, (ops, batchnorms, bn_after_conv)
    with torch.no_grad():
        y = model(x)
    return x.numpy(), y.numpy(), dict(ops)


manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__, "models": {}}
tensors = {}

mobilenet = torchvision.models.mobilenet_v2()
state = torch.load(mobilenet_pth, map_location="cpu", weights_only=True)
mobilenet.load_state_dict(state)
x, y, ops = export(mobilenet, "mobilenet_v2", 224)
tensors["mobilenet_v2.input"], tensors["mobilenet_v2.output"] = x, y
manifest["models"]["mobilenet_v2"] = {"ops": ops, "input": list(x.shape), "output": list(y.shape)}

resnet = torchvision.models.resnet18()
with torch.no_grad():
    for m in resnet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0.0, 0.1)
x, y, ops = export(resnet, "resnet18", 112)
tensors["resnet18.input"], tensors["resnet18.output"] = x, y
manifest["models"]["resnet18"] = {"ops": ops, "input": list(x.shape), "output": list(y.shape)}
save_safetensors(f"{out}/resnet18.safetensors",
                 {k: v.numpy() for k, v in resnet.state_dict().items() if v.dtype == torch.float32})

# PP-OCR's direction classifier: onnx's own reference semantics on two text-line-sized inputs.
ppocr = onnx.load(ppocr_path)
# The spec (opset 9-13) runs BatchNormalization in inference mode when the node has one
# output. onnx.reference's BatchNormalization_9 instead switches to training mode (batch
# statistics) whenever `momentum` is set, and fills momentum in from the schema's default when
# a node leaves it out, so it never runs a single-output node in inference mode. Replace it by
# the spec's inference formula (the evaluator's own `_batchnorm_test_mode`).
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_batch_normalization import _batchnorm_test_mode


class BatchNormalization(OpRun):
    op_domain = ""

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None):
        assert not training_mode
        return (_batchnorm_test_mode(x, scale, bias, mean, var, epsilon=epsilon),)


x = np.random.default_rng(0).uniform(-1.0, 1.0, size=(2, 3, 48, 192)).astype(np.float32)
(y,) = onnx.reference.ReferenceEvaluator(ppocr, new_ops=[BatchNormalization]).run(None, {ppocr.graph.input[0].name: x})
tensors["ppocr_cls.input"], tensors["ppocr_cls.output"] = x, y
manifest["models"]["ppocr_cls"] = {"ops": dict(collections.Counter(n.op_type for n in ppocr.graph.node)),
                                   "input": list(x.shape), "output": list(y.shape), "reference": "onnx.reference.ReferenceEvaluator (inference-mode BatchNormalization)"}

save_safetensors(f"{out}/reference.safetensors", tensors)
with open(f"{out}/manifest.json", "w") as f:
    json.dump(manifest, f, indent=1)
print(json.dumps(manifest["models"], indent=1))
