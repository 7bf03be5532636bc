"""First start after the JSON-record layout: each `<id>.json` beside its
image moves into the index, in one transaction, then the JSON file goes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from codex_image_server.runtime.logs import log
from codex_image_server.store.records import StoredImage

_FIELDS = {f.name for f in dataclasses.fields(StoredImage)}


def json_records(directory: Path, is_valid_id) -> list[tuple[Path, StoredImage]]:
    found = []
    for path in sorted(directory.glob("img_*.json")):
        if not is_valid_id(path.stem):
            continue
        try:
            raw = json.loads(path.read_text())
            fields = {k: v for k, v in raw.items() if k in _FIELDS}
            fields["references"] = tuple(fields.get("references") or ())
            for name in ("transparency", "usage"):  # dicts, or JSON text as the index keeps them
                if isinstance(fields.get(name), str):
                    fields[name] = json.loads(fields[name]) if fields[name] else None
            record = StoredImage(**fields)
        except (OSError, ValueError, TypeError):
            log("store.migrate_skipped", level="warning", file=path.name)
            continue
        if (directory / record.file_name).is_file():
            found.append((path, record))
    return found


def import_json_records(directory: Path, metadata, is_valid_id) -> int:
    found = json_records(directory, is_valid_id)
    if not found:
        return 0
    metadata.add_images([record for _, record in found])
    for path, _ in found:
        path.unlink(missing_ok=True)
    log("store.migrated", images=len(found))
    return len(found)
