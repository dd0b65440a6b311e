"""The test-vector generators of tests/vectors, loaded once as modules for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


def load_generator(name: str) -> ModuleType:
    """``tests/vectors/<name>.py`` as a module (the same one on every call)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, VECTORS_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
