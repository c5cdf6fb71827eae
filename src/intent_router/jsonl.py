"""JSON Lines files of objects, read with the line each object came from.

Shared by training (the real-prompt corpus) and evaluation (the real test split): one reader,
so a malformed line is reported the same way (``file:line: reason``) on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_objects(
    path: Path, error: type[ValueError] = ValueError
) -> list[tuple[str, dict[str, Any]]]:
    """(``file:line``, object) for every non-blank line of ``path``; ``error`` naming the line
    when one is not valid JSON or not a JSON object."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{Path(path).name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise error(f"{where}: not a JSON object")
        out.append((where, row))
    return out
