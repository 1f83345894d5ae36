"""Where tests/test_cuda*.py put their "CUDA" arrays.

On a machine with a GPU and the nvcc-built ``fastloss._cuda``: CUDA torch tensors. With the
emulated module of the test build (``FASTLOSS_CUDA_EMULATOR=ON``, ``fastloss._cuda.emulated``):
CPU torch tensors stand in for CUDA tensors on device 0 (``route_cpu_tensors_to_cuda``), so the
front end's CUDA path hands their host pointers to the kernels, which run on the host.
"""

from __future__ import annotations

from fastloss import _arrays, _fast
from fastloss._arrays import device as ca
from fastloss._backends import cuda as _cuda_api


class HostTorchLib(ca.TorchLib):
    """CPU torch tensors playing CUDA tensors on device 0."""

    def describe(self, obj, name):
        return ca.DeviceArray(source=obj, lib=self, shape=tuple(obj.shape), strides=tuple(obj.stride()),
                              dtype=str(obj.dtype).removeprefix("torch."), device=0, ptr=obj.data_ptr(),
                              itemsize=obj.element_size())

    def stream(self, device):
        return 0

    def synchronize(self, device):
        pass

    def empty(self, shape, dtype, device):
        return self.torch.empty(shape, dtype=getattr(self.torch, dtype))

    def upload(self, values, dtype, device):
        return self.torch.as_tensor(values).to(dtype=getattr(self.torch, dtype))

    def to_host(self, obj):
        return obj.detach().numpy()  # a CPU tensor would still pass for a CUDA one here


def route_cpu_tensors_to_cuda(monkeypatch) -> None:
    """Makes the front end treat every torch tensor as a CUDA tensor on device 0."""
    import torch

    lib = HostTorchLib()
    host_device_of = _arrays.device_of
    monkeypatch.setattr(_arrays, "device_of", lambda o: "cuda:0" if isinstance(o, torch.Tensor) else host_device_of(o))
    monkeypatch.setattr(ca, "library_of", lambda o: lib if isinstance(o, torch.Tensor) else None)
    monkeypatch.setattr(ca, "is_device_array", lambda o: isinstance(o, torch.Tensor))
    monkeypatch.setattr(_fast, "torch_view", lambda o: None)  # CPU tensors here stand for CUDA ones


def emulated() -> bool:
    """True when fastloss._cuda is the test build's host emulation."""
    return bool(getattr(_cuda_api._cuda, "emulated", False))
