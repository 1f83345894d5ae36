"""CUDA array interop: CuPy arrays and CUDA torch tensors as fastloss's CUDA path sees them.

A ``DeviceArray`` carries what the kernels need (pointer, shape, element strides, dtype name,
device) plus the caller's object and its library, so that every buffer fastloss allocates is
allocated by that library on that device (``torch.empty`` / ``cupy.empty``) and every conversion
(``.to`` / ``.astype``) is queued on the library's current stream, the stream the kernels use.

``DeviceArray`` also quacks like ``_arrays.HostArray`` where the front end's validation looks
(``.data.shape``, ``.data.dtype.kind``, ``.dtype``, ``.is_float``), so that validation is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .host import FLOAT_DTYPES, refuse_autograd


def _numpy_dtype(name: str) -> np.dtype:
    """NumPy's dtype of that name, or void (kind 'V', rejected by every check) where it has none."""
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype("V")


class TorchLib:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, self.torch.Tensor)

    def describe(self, obj: Any, name: str) -> DeviceArray:
        if obj.device.type != "cuda":
            raise ValueError(f"{name} is on device {obj.device}, expected a CUDA tensor")
        refuse_autograd(obj, name, "torch")
        return DeviceArray(
            source=obj, lib=self, shape=tuple(obj.shape), strides=tuple(obj.stride()),
            dtype=str(obj.dtype).removeprefix("torch."), device=obj.device.index or 0, ptr=obj.data_ptr(),
            itemsize=obj.element_size(),
        )

    def stream(self, device: int) -> int:
        return self.torch.cuda.current_stream(device).cuda_stream

    def synchronize(self, device: int) -> None:
        self.torch.cuda.current_stream(device).synchronize()

    def empty(self, shape: tuple[int, ...], dtype: str, device: int) -> Any:
        return self.torch.empty(shape, dtype=getattr(self.torch, dtype), device=f"cuda:{device}")

    def convert(self, a: DeviceArray, dtype: str) -> Any:
        """a as a C-contiguous array of dtype (a itself where it already is one)."""
        return a.source.detach().to(getattr(self.torch, dtype)).contiguous()

    def upload(self, values: np.ndarray, dtype: str, device: int) -> Any:
        return self.torch.as_tensor(values).to(device=f"cuda:{device}", dtype=getattr(self.torch, dtype))

    def copy_into(self, dst: Any, src: Any) -> None:
        with self.torch.no_grad():
            dst.copy_(src.view(dst.shape))

    def to_host(self, obj: Any) -> Any:
        return obj.detach().cpu()


class CupyLib:
    name = "cupy"

    def __init__(self):
        import cupy

        self.cupy = cupy

    def owns(self, obj: Any) -> bool:
        return isinstance(obj, self.cupy.ndarray)

    def describe(self, obj: Any, name: str) -> DeviceArray:
        itemsize = obj.dtype.itemsize
        return DeviceArray(
            source=obj, lib=self, shape=tuple(obj.shape), strides=tuple(s // itemsize for s in obj.strides),
            dtype=obj.dtype.name, device=obj.device.id, ptr=obj.data.ptr, itemsize=itemsize,
        )

    def stream(self, device: int) -> int:
        with self.cupy.cuda.Device(device):
            return self.cupy.cuda.get_current_stream().ptr

    def synchronize(self, device: int) -> None:
        with self.cupy.cuda.Device(device):
            self.cupy.cuda.get_current_stream().synchronize()

    def empty(self, shape: tuple[int, ...], dtype: str, device: int) -> Any:
        with self.cupy.cuda.Device(device):
            return self.cupy.empty(shape, dtype=dtype)

    def convert(self, a: DeviceArray, dtype: str) -> Any:
        with self.cupy.cuda.Device(a.device):
            return self.cupy.ascontiguousarray(a.source.astype(dtype, copy=False))

    def upload(self, values: np.ndarray, dtype: str, device: int) -> Any:
        with self.cupy.cuda.Device(device):
            return self.cupy.asarray(values, dtype=dtype)

    def copy_into(self, dst: Any, src: Any) -> None:
        with self.cupy.cuda.Device(dst.device.id):
            dst[...] = src.reshape(dst.shape)

    def to_host(self, obj: Any) -> Any:
        return obj.get()


_LIBS: dict[str, Any] = {}


def library_of(obj: Any) -> TorchLib | CupyLib | None:
    """The adapter of obj's library, or None when obj is neither a torch tensor nor a CuPy array."""
    mod = type(obj).__module__.split(".")[0]
    if mod not in ("torch", "cupy"):
        return None
    if mod not in _LIBS:
        _LIBS[mod] = TorchLib() if mod == "torch" else CupyLib()
    lib = _LIBS[mod]
    return lib if lib.owns(obj) else None


@dataclass
class DeviceArray:
    """A CUDA array: the caller's object plus its pointer, shape, strides (in elements) and dtype."""

    source: Any
    lib: Any  # TorchLib | CupyLib
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str  # torch/NumPy dtype name, e.g. "float32", "bfloat16", "int64", "bool"
    device: int
    ptr: int
    itemsize: int

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def data(self) -> SimpleNamespace:
        """The (shape, NumPy dtype) view the front end's validation reads."""
        return SimpleNamespace(shape=self.shape, dtype=_numpy_dtype(self.dtype))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def contiguous(self) -> bool:
        expected = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def byte_range(self) -> tuple[int, int]:
        """[first, last) bytes the array can touch; empty arrays touch nothing."""
        if self.size == 0:
            return self.ptr, self.ptr
        lo = sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s < 0)
        hi = sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s > 0)
        return self.ptr + lo * self.itemsize, self.ptr + (hi + 1) * self.itemsize

    def same_array(self, other: DeviceArray) -> bool:
        return (self.ptr, self.shape, self.strides, self.device) == (other.ptr, other.shape, other.strides, other.device)

    def overlaps(self, other: DeviceArray) -> bool:
        if self.device != other.device:
            return False
        a0, a1 = self.byte_range()
        b0, b1 = other.byte_range()
        return a0 < b1 and b0 < a1


def is_device_array(obj: Any) -> bool:
    """True for any object that lives on a CUDA device (supported or not)."""
    if hasattr(obj, "__cuda_array_interface__"):
        return True
    lib = library_of(obj)
    if lib is not None and lib.name == "torch":
        return obj.device.type != "cpu"
    dev = getattr(obj, "__dlpack_device__", None)
    if dev is not None and not isinstance(obj, np.ndarray):
        try:
            return int(dev()[0]) != 1  # kDLCPU
        except Exception:  # noqa: BLE001 - a producer that cannot say is not a device array
            return False
    return False


def describe(obj: Any, name: str) -> DeviceArray:
    """obj as a DeviceArray; TypeError for CUDA objects of other libraries."""
    lib = library_of(obj)
    if lib is None:
        raise TypeError(
            f"{name}: only CuPy arrays and CUDA torch tensors are supported on CUDA devices, got "
            f"{type(obj).__module__}.{type(obj).__name__} (convert it with cupy.asarray or torch.as_tensor)"
        )
    return lib.describe(obj, name)
