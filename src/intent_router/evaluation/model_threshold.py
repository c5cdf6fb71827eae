"""Write a confidence threshold into models/intent.json, changing nothing else."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from intent_router.model_contract import ModelMetadata, load_metadata


def write_threshold(metadata_path: Path, threshold: float) -> ModelMetadata:
    """Set ``confidence_threshold`` in the metadata file and return the reloaded metadata.

    The file is edited as a JSON object (unknown keys survive), validated through the model
    contract before it is written, written atomically, and loaded back to check."""
    path = Path(metadata_path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: metadata must be a JSON object")
    raw["confidence_threshold"] = float(threshold)
    ModelMetadata.from_dict(raw)  # raises ModelContractError before anything is written
    # The same layout as ModelMetadata.to_json, so the diff is the one line.
    text = json.dumps(raw, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return load_metadata(path)
