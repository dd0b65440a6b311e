"""Generate the Python API (sealpost/v1) from proto/sealpost/v1/*.proto.

Run by `make proto`. The generator versions are pinned in pyproject.toml
(grpcio-tools, mypy-protobuf), so the output is a pure function of the
.proto files; tests/unit/test_codegen.py regenerates into a temporary folder
and fails when the committed code differs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
PACKAGE_DIR = Path("sealpost") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    """The API's .proto files, relative to proto/."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Generate into ``out_root/sealpost/v1`` and return the files written."""
    from grpc_tools import protoc  # noqa: PLC0415 - a development tool, imported on use

    bin_dir = Path(sys.executable).parent
    well_known = Path(protoc.__file__).parent / "_proto"
    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    package = out_root / PACKAGE_DIR
    (package / "__init__.py").write_text(
        '"""Generated from proto/sealpost/v1 by `make proto`."""\n'
    )
    return sorted(package.iterdir())


def generated_files(package: Path) -> list[Path]:
    """The generated files in a package folder (what `generate` owns)."""
    return sorted(p for p in package.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> None:
    """Regenerate sealpost/v1 in place, removing files of deleted protos."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    target = REPO_ROOT / PACKAGE_DIR
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        for old in generated_files(target):
            old.unlink()
        for path in fresh:
            shutil.copyfile(path, target / path.name)
    print(f"generated {len(fresh)} files in {PACKAGE_DIR}")


if __name__ == "__main__":
    main()
