"""Compare two builds of the pipeline byte for byte: every file under results/ and data/processed/.

Usage: python tests/cluster/compare_outputs.py LOCAL_PROJECT CLUSTER_PROJECT

Prints the number of files compared; exits 1 listing every file missing on one side or whose
bytes differ (with both sizes and sha256), 0 when the two trees are identical.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

OUTPUT_DIRS = ("results", "data/processed")


def tree(root: Path) -> dict[str, Path]:
    """Every file under the output folders of ``root``, by path relative to ``root``."""
    files = {}
    for sub in OUTPUT_DIRS:
        for path in sorted((root / sub).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(root))] = path
    return files


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def differences(left: Path, right: Path) -> tuple[int, list[str]]:
    """Number of files compared, and one line per difference between the two projects."""
    a, b = tree(left), tree(right)
    problems = [f"only in {left}: {name}" for name in sorted(a.keys() - b.keys())]
    problems += [f"only in {right}: {name}" for name in sorted(b.keys() - a.keys())]
    for name in sorted(a.keys() & b.keys()):
        if a[name].read_bytes() != b[name].read_bytes():
            problems.append(
                f"differs: {name} ({a[name].stat().st_size} B sha256 {digest(a[name])[:12]} vs "
                f"{b[name].stat().st_size} B sha256 {digest(b[name])[:12]})"
            )
    return len(a.keys() | b.keys()), problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    left, right = Path(argv[0]), Path(argv[1])
    count, problems = differences(left, right)
    if count == 0:
        print(f"error: no output file under {', '.join(OUTPUT_DIRS)} in either project", file=sys.stderr)
        return 1
    if problems:
        print(
            f"error: {len(problems)} of {count} output files differ between the local and the cluster build:",
            file=sys.stderr,
        )
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"==> {count} output files (results/, data/processed/) identical byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
