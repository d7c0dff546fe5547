"""Generate ``open_inference_pb2.py`` and its type stub from ``open_inference.proto``.

``python -m servekit.rpc.generate [--check]``: the generated files are committed (the serving
image needs no protoc); ``--check`` exits 1 when they differ from what the proto gives now.
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from servekit.cli.common import documented_parser

HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parents[1]  # src/, so the generated module is servekit.rpc.open_inference_pb2
PROTO = HERE / "open_inference.proto"
GENERATED = ("open_inference_pb2.py", "open_inference_pb2.pyi")


def generate(out: Path) -> None:
    from grpc_tools import protoc  # a dev dependency: serving only imports the generated module

    relative = PROTO.relative_to(SOURCE_ROOT)
    status = protoc.main(
        ["protoc", f"-I{SOURCE_ROOT}", f"--python_out={out}", f"--pyi_out={out}", str(relative)]
    )
    if status != 0:
        raise SystemExit(f"protoc failed on {relative} (status {status})")


def stale() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        made = Path(tmp) / PROTO.relative_to(SOURCE_ROOT).parent
        return [
            name
            for name in GENERATED
            if not (HERE / name).exists() or not filecmp.cmp(made / name, HERE / name, shallow=False)
        ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = documented_parser("python -m servekit.rpc.generate", __doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are stale")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        if outdated:
            print(f"stale: {', '.join(outdated)}; run python -m servekit.rpc.generate", file=sys.stderr)
            return 1
        return 0
    generate(SOURCE_ROOT)
    print("wrote " + ", ".join(str(HERE / name) for name in GENERATED))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
