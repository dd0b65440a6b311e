"""The committed generated code is exactly what `make proto` produces from proto/."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.conftest import REPO_ROOT


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", REPO_ROOT / "proto" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generator = _generator()
    generator.generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in generator.generated_files(tmp_path / "sealpost/v1")}
    committed_dir = REPO_ROOT / "sealpost" / "v1"
    committed = {p.name: p.read_bytes() for p in generator.generated_files(committed_dir)}
    assert sorted(committed) == sorted(fresh), "files differ: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run `make proto` and commit the result"
    assert len(fresh) == 4 * len(generator.proto_files())


def test_every_proto_has_generated_code() -> None:
    generator = _generator()
    for proto in generator.proto_files():
        stem = Path(proto).stem
        assert (REPO_ROOT / "sealpost" / "v1" / f"{stem}_pb2.py").is_file()
