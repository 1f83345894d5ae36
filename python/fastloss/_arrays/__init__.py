"""Array interop: what the front end and the backends see of the caller's arrays.

``host``: CPU data of NumPy, torch, JAX and any ``__dlpack__`` producer, viewed as NumPy arrays
without a copy, and results wrapped back into the caller's type. ``device``: CUDA data of CuPy and
torch, described by pointer, shape and strides, with buffers allocated by the caller's library.
"""

from .host import (  # noqa: F401 - the host API is the package's
    DTYPE_CODES,
    FLOAT_DTYPES,
    HostArray,
    as_host,
    device_of,
    from_float64,
    host_values,
    loss_dtype,
    storage_dtype,
    to_float64,
    wrap,
    wrap_scalar,
)
