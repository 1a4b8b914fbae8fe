"""Test-only scaffolding that lets verl 0.9.1 + vLLM (CPU) run a real training loop on a machine with no GPU.

Loaded only by `make demo` and tests/e2e: the driver puts this folder on PYTHONPATH and sets
VERL_USE_EXTERNAL_MODULES=verl_cpu_support, so `import verl` imports this module in every process (driver,
TaskRunner, Ray workers, the vLLM worker processes, which import verl's worker extension). Nothing here is part
of the `sophiavl` package; GPU users never load it.

Each hack below names the error it gets past. The environment it needs (VLLM_TARGET_DEVICE=cpu, VERL_PLATFORM=cpu,
...) is set once, by the driver (demo.py: base_env, training_env).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys
import types

import torch
import torch.distributed
import torch.nn.functional as F
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

# ---------------------------------------------------------------------------------------------------------------
# 1. A verl platform named "cpu" (selected with VERL_PLATFORM=cpu).
#    Gets past: "No supported accelerator detected ... Falling back to 'nvidia'" and then CUDA calls that fail.
# ---------------------------------------------------------------------------------------------------------------


def _zero(*args, **kwargs):
    return 0


def _nothing(*args, **kwargs):
    return None


# verl calls get_torch_device().<name>() for memory stats, caches, RNG state and streams; torch.cpu has only part
# of that. Gets past e.g. "module 'torch.cpu' has no attribute 'empty_cache'" and, in the flops counter,
# "... has no attribute 'get_device_name'".
cpu_device_module = types.ModuleType("verl_cpu_device")
for _name in dir(torch.cpu):
    if not _name.startswith("_"):
        setattr(cpu_device_module, _name, getattr(torch.cpu, _name))
cpu_device_module.is_available = lambda: True
cpu_device_module.device_count = lambda: 1
cpu_device_module.current_device = lambda: torch.device("cpu")
cpu_device_module.set_device = _nothing
cpu_device_module.synchronize = _nothing
cpu_device_module.empty_cache = _nothing
cpu_device_module.ipc_collect = _nothing
cpu_device_module.set_per_process_memory_fraction = _nothing
cpu_device_module.memory_allocated = _zero
cpu_device_module.memory_reserved = _zero
cpu_device_module.max_memory_allocated = _zero
cpu_device_module.max_memory_reserved = _zero
cpu_device_module.reset_peak_memory_stats = _nothing
cpu_device_module.mem_get_info = lambda *a, **k: (8 << 30, 16 << 30)
cpu_device_module.get_device_name = lambda *a, **k: "cpu"
cpu_device_module.get_rng_state = lambda *a, **k: torch.get_rng_state()
cpu_device_module.set_rng_state = lambda state, *a, **k: torch.set_rng_state(state)
cpu_device_module.manual_seed = torch.manual_seed
cpu_device_module.manual_seed_all = torch.manual_seed


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        return cpu_device_module

    def is_available(self) -> bool:
        return True

    # verl moves tensors with .to(get_device_id()); an int would mean cuda:<int>.
    # Gets past "Cannot access accelerator device" in the FSDP2 engine.
    def current_device(self):
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index) -> None:
        pass

    def synchronize(self, device_index=None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    # verl schedules its workers on Ray "GPU" resources and checks that enough exist; the run starts Ray with
    # fake GPUs (+ray_kwargs.ray_init.num_gpus=1). Gets past verl's "not enough GPUs" resource check.
    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        pass

    def profiler_stop(self) -> None:
        pass

    def cudart(self):
        return None


# ---------------------------------------------------------------------------------------------------------------
# 2. verl builds the backend string f"cpu:gloo,{device}:{backend}", which is "cpu:gloo,cpu:gloo" here.
#    Gets past "Duplicate device type cpu in backend string" from torch.distributed.init_process_group.
# ---------------------------------------------------------------------------------------------------------------
_original_init_process_group = torch.distributed.init_process_group


def _init_process_group_dedup(*args, **kwargs):
    backend = kwargs.get("backend")
    if isinstance(backend, str) and "," in backend:
        parts = []
        for part in backend.split(","):
            if part not in parts:
                parts.append(part)
        kwargs["backend"] = ",".join(parts)
    return _original_init_process_group(*args, **kwargs)


if not getattr(torch.distributed.init_process_group, "_verl_cpu_dedup", False):
    _init_process_group_dedup._verl_cpu_dedup = True
    torch.distributed.init_process_group = _init_process_group_dedup


# ---------------------------------------------------------------------------------------------------------------
# 3. verl wraps the reference model (forward only, needed by the recipe's KL loss) with FSDP2's
#    CPUOffloadPolicy(pin_memory=True); pinning needs an accelerator.
#    Gets past "RuntimeError: Cannot access accelerator device when none is available" in FSDPParam.pin_memory().
#    Pinned memory only speeds up host-to-device copies, which do not exist here.
# ---------------------------------------------------------------------------------------------------------------
torch.Tensor.pin_memory = lambda self, *args, **kwargs: self


# ---------------------------------------------------------------------------------------------------------------
# 4. vLLM (CPU) repacks every linear weight for its own GEMM kernels after loading and replaces `layer.weight` by
#    an empty Parameter. verl's weight sync then loads into that empty Parameter.
#    Gets past "'Parameter' object has no attribute 'weight_loader'" during the actor -> rollout weight sync:
#    every linear layer keeps its ordinary weight and runs a plain F.linear.
# ---------------------------------------------------------------------------------------------------------------
_VLLM_GEMM_MODULE = "vllm.model_executor.layers.utils"


def _plain_cpu_gemm(layer, remove_weight: bool) -> None:
    layer.cpu_linear = lambda x, weight, bias: F.linear(x, weight, bias)


def _patch_vllm_gemm(module) -> None:
    module.dispatch_cpu_unquantized_gemm = _plain_cpu_gemm


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Patches vLLM's GEMM dispatch when vLLM imports it (importing vLLM here would slow every verl process)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _VLLM_GEMM_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        _patch_vllm_gemm(module)


if _VLLM_GEMM_MODULE in sys.modules:
    _patch_vllm_gemm(sys.modules[_VLLM_GEMM_MODULE])
elif not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _PatchAfterImport())
