"""The installed package must carry what CI built: a missing extension would otherwise pass silently
on the NumPy fallback."""

import os

import fastloss
import pytest
from fastloss import _backends


@pytest.mark.skipif(not os.environ.get("FASTLOSS_REQUIRE_NATIVE"), reason="only where the build is required")
def test_native_extension_was_built_and_is_the_default():
    assert "native" in _backends.available(), _backends._NATIVE_ERROR
    assert fastloss.backend() == "native" or os.environ.get("FASTLOSS_BACKEND") == "numpy"
