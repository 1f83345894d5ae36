"""Where fastloss's C/C++ headers are, for extensions that build against them."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def get_include() -> str:
    """The directory to add to the include path so that ``#include <fastloss/kernels.h>`` works.

    It holds ``fastloss/kernels.h`` (the C ABI of the dispatched CPU kernels, reached through the
    ``fastloss._C._kernel_table`` PyCapsule), ``fastloss/params.h`` with the loss ids and
    ``LossParams`` generated from ``_spec.py`` (``fastloss_generated/loss_table.h``), and the per-loss
    scalar math headers ``fastloss/losses/<name>.h``. A source checkout lacks the generated header
    (it lives in the CMake build tree). An installed wheel ships them in ``fastloss/include``; a
    source checkout used through ``PYTHONPATH=python`` falls back to the repository's ``csrc``.
    """
    for candidate in (_PACKAGE / "include", _PACKAGE.parent.parent / "csrc"):
        if (candidate / "fastloss" / "kernels.h").is_file():
            return str(candidate)
    raise FileNotFoundError(f"fastloss's headers are neither in {_PACKAGE / 'include'} nor in a source tree")
