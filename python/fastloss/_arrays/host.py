"""Array interop: NumPy / torch / JAX / any DLPack producer in, the caller's own type out.

Inside fastloss every CPU array is a NumPy array. bfloat16 has no NumPy dtype without
``ml_dtypes``, so it travels as its raw ``uint16`` bits with the dtype carried by name; this keeps
``ml_dtypes`` an optional dependency and lets the kernels read the bits directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _spec

FLOAT_DTYPES = _spec.DTYPES
DTYPE_CODES = {name: code for code, name in enumerate(FLOAT_DTYPES)}  # the native FlDtype values
_STORAGE = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.uint16}
_DLPACK_CPU, _DLPACK_CUDA = 1, 2


def _lib(obj: Any) -> str:
    mod = type(obj).__module__.split(".")[0]
    if isinstance(obj, np.ndarray):
        return "numpy"
    if mod in ("torch", "jax", "jaxlib", "cupy"):
        return "jax" if mod == "jaxlib" else mod
    return "dlpack" if hasattr(obj, "__dlpack__") else "other"


def device_of(obj: Any) -> str:
    """'cpu' or 'cuda:N' for any supported array; plain sequences are 'cpu'."""
    if _lib(obj) == "torch":
        return "cpu" if obj.device.type == "cpu" else f"{obj.device.type}:{obj.device.index or 0}"
    if hasattr(obj, "__cuda_array_interface__"):
        return f"cuda:{obj.device.id}" if hasattr(obj, "device") else "cuda:0"
    if hasattr(obj, "__dlpack_device__") and not isinstance(obj, np.ndarray):
        kind, index = obj.__dlpack_device__()
        if int(kind) == _DLPACK_CUDA:
            return f"cuda:{index}"
        if int(kind) != _DLPACK_CPU:
            return f"dlpack-device-{int(kind)}:{index}"
    return "cpu"


@dataclass
class HostArray:
    """A CPU array as fastloss sees it: a NumPy view plus the facts needed to answer in kind."""

    data: np.ndarray  # bfloat16 as uint16 bits
    dtype: str  # numpy dtype name, or "bfloat16"
    lib: str  # the library the caller gave us: numpy | torch | jax | dlpack | other
    source: Any  # the caller's object

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape


def _numpy_view(obj: Any, lib: str) -> tuple[np.ndarray, str]:
    if lib == "torch":
        t = obj.detach()
        if t.is_conj() or t.is_neg():
            t = t.resolve_conj().resolve_neg()
        if str(t.dtype) == "torch.bfloat16":
            import torch

            return t.view(torch.int16).numpy().view(np.uint16), "bfloat16"
        return t.numpy(), str(t.dtype).removeprefix("torch.")
    if isinstance(obj, np.ndarray):
        arr = obj
    elif lib in ("dlpack", "jax"):
        try:
            arr = np.from_dlpack(obj)
        except (BufferError, TypeError, RuntimeError):
            arr = np.asarray(obj)  # e.g. bfloat16, which NumPy's DLPack import refuses
    else:
        arr = np.asarray(obj)
    if arr.dtype.name == "bfloat16":
        return arr.view(np.uint16), "bfloat16"
    return arr, arr.dtype.name


def refuse_autograd(obj: Any, name: str, lib: str) -> None:
    """The core API computes gradients itself and records nothing for autograd: a tensor that
    requires grad would silently lose its graph (or, as ``out=``, be overwritten under autograd)."""
    if lib == "torch" and obj.requires_grad:
        raise TypeError(
            f"{name} is a torch tensor that requires grad: the core fastloss functions do not record "
            "autograd; use fastloss.torch (e.g. fastloss.torch.cross_entropy) for autograd, or pass "
            f"{name}.detach()"
        )


def as_host(obj: Any, name: str) -> HostArray:
    """A CPU view of ``obj`` (no copy where the producer allows one)."""
    lib = _lib(obj)
    if device_of(obj) != "cpu":
        raise ValueError(f"{name} is on device {device_of(obj)}, expected a CPU array")
    refuse_autograd(obj, name, lib)
    try:
        arr, dtype = _numpy_view(obj, lib)
    except Exception as exc:  # any producer failure is the caller's bad input
        raise TypeError(f"{name} is not an array fastloss can read: {type(obj).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} is not a numeric array: {type(obj).__name__}")
    return HostArray(arr, dtype, lib, obj)


def host_values(obj: Any, name: str) -> np.ndarray:
    """Values of a small auxiliary array (weights, grad_output) as a plain NumPy array."""
    h = as_host(obj, name)
    return to_float64(h.data, h.dtype) if h.dtype == "bfloat16" else h.data


# ---- dtype conversions -------------------------------------------------------------------------


def storage_dtype(dtype: str) -> type:
    return _STORAGE[dtype]


def loss_dtype(dtype: str) -> type:
    """16-bit inputs return their loss in float32 (DESIGN 1.3)."""
    return np.float64 if dtype == "float64" else np.float32


def to_float64(data: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return data.astype(np.float64)


def from_float64(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round float64 values once (to nearest even) into ``dtype``'s storage."""
    if dtype != "bfloat16":
        return x.astype(_STORAGE[dtype])
    x = np.asarray(x, dtype=np.float64)
    bits = x.view(np.uint64)
    lsb = (bits >> np.uint64(45)) & np.uint64(1)
    # the 45 dropped bits round half to even: add half an ulp minus 1, plus the kept lsb
    rounded = ((bits + np.uint64(0xFFFFFFFFFFF) + lsb) & ~np.uint64(0x1FFFFFFFFFFF)).view(np.float64)
    tiny = np.abs(x) < 2.0**-126  # bfloat16 subnormals: fixed absolute spacing 2**-133
    rounded = np.where(tiny, np.rint(x * 2.0**133) * 2.0**-133, rounded)
    with np.errstate(over="ignore"):
        out = (rounded.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), out)


# ---- answering in the caller's type ------------------------------------------------------------


def empty_like_storage(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return np.empty(shape, dtype=_STORAGE[dtype])


def wrap(data: np.ndarray, dtype: str, like: HostArray) -> Any:
    """``data`` (NumPy storage of ``dtype``) as an array of ``like``'s library, no copy where possible."""
    if like.lib == "torch":
        import torch

        if dtype == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(data).view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(np.asarray(data))
    if dtype == "bfloat16":
        import ml_dtypes  # present whenever a NumPy/JAX caller handed us bfloat16

        data = data.view(ml_dtypes.bfloat16)
    if like.lib == "jax":
        import jax.numpy as jnp

        return jnp.asarray(data)
    if like.lib == "dlpack" and hasattr(like.source, "__array_namespace__"):
        try:
            return like.source.__array_namespace__().from_dlpack(data)
        except Exception:  # noqa: BLE001 - a producer that cannot import NumPy gets NumPy back
            return data
    return data


def wrap_scalar(value: float, dtype: type, like: HostArray) -> Any:
    if like.lib == "torch":
        import torch

        return torch.tensor(value, dtype=torch.float64 if dtype is np.float64 else torch.float32)
    scalar = dtype(value)
    if like.lib == "jax":
        import jax.numpy as jnp

        return jnp.asarray(scalar)
    return scalar
