"""Where fastloss's C/C++ headers are, for extensions that build against them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def get_include() -> str:
    """The directory to add to the include path so that ``#include <fastloss/kernels.h>`` works.

    It holds ``fastloss/kernels.h`` (the C ABI of the dispatched CPU kernels, reached through the
    ``fastloss._C._kernel_table`` PyCapsule), ``fastloss/params.h`` with the loss ids and
    ``LossParams`` generated from ``_spec.py`` (``fastloss_generated/loss_table.h``, with each loss's
    own parameter view ``<name>_params``), the math vocabulary ``fastloss/math_ops.h`` and the
    per-loss scalar math headers ``fastloss/losses/<name>.h``. An installed wheel ships them in
    ``fastloss/include``. A source checkout used through ``PYTHONPATH=python`` gets
    ``build-include/`` (git-ignored): a link to the repository's ``csrc/fastloss`` beside the
    generated header, written from the current ``_spec.py`` by ``tools/gen_losses.py`` (kept out of
    ``csrc`` itself, where a stale copy could shadow a build's own generated headers).
    """
    installed = _PACKAGE / "include"
    if (installed / "fastloss" / "kernels.h").is_file():
        return str(installed)
    root = _PACKAGE.parent.parent
    headers, generator = root / "csrc" / "fastloss", root / "tools" / "gen_losses.py"
    if (headers / "kernels.h").is_file() and generator.is_file():
        include = root / "build-include"
        include.mkdir(exist_ok=True)
        link = include / "fastloss"
        if not link.exists():
            link.symlink_to(Path("..") / "csrc" / "fastloss", target_is_directory=True)
        _generate_loss_table(generator, include)
        return str(include)
    raise FileNotFoundError(f"fastloss's headers are neither in {installed} nor in a source tree")


def _generate_loss_table(generator: Path, out: Path) -> None:
    """tools/gen_losses.py OUT: rewrites only files whose text changed, so this is cheap."""
    spec = importlib.util.spec_from_file_location("fastloss_gen_losses", generator)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.main(["gen_losses.py", str(out)]) != 0:
        raise RuntimeError(f"{generator} failed for {_PACKAGE / '_spec.py'}")
