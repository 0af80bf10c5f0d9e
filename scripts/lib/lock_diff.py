"""Print what changed between two uv.lock files: added, removed and moved packages.

Usage: python3 scripts/lib/lock_diff.py OLD_LOCK NEW_LOCK (scripts/lock runs it; for a
committed change, `git show HEAD~1:uv.lock > /tmp/old.lock` gives the old one).
Standard library only: it runs before the project's environment exists.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def versions(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in tomllib.loads(path.read_text())["package"]:
        found.setdefault(package["name"], set()).add(str(package.get("version", "(project)")))
    return found


def changes(old: dict[str, set[str]], new: dict[str, set[str]]) -> list[str]:
    lines = []
    for name in sorted(old.keys() | new.keys()):
        was, now = ", ".join(sorted(old.get(name, ()))), ", ".join(sorted(new.get(name, ())))
        if was == now:
            continue
        lines.append(f"  {name:32} {was or '(new)'} -> {now or '(removed)'}")
    return lines


def main() -> None:
    lines = changes(versions(Path(sys.argv[1])), versions(Path(sys.argv[2])))
    print("uv.lock: " + (f"{len(lines)} package(s) changed" if lines else "no package changed"))
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
