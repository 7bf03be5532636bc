"""Named API keys: who is calling, and what each key may use.

The keys file (JSON) holds, per key, a name, the sha256 of the key (never
the key) and optional limits; it is re-read on SIGHUP. A key given as
CODEX_IMAGE_SERVER_API_KEY is the key named "default", without limits.
With no key at all the server is open and callers have the empty name.

Each key has a role: a "member" (the default) sees only its own images and
requests; an "admin" sees everyone's. The env key, the server's internal key
and the open server's anonymous caller are admins (tenancy.py scopes).

    {"keys": [{"name": "ci", "sha256": "<hex>", "role": "member",
               "max_concurrent": 2, "images_per_day": 100}]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

from codex_image_server.store.blobs import write_atomic

DEFAULT_NAME = "default"
MEMBER = "member"
ADMIN = "admin"
ROLES = (MEMBER, ADMIN)


@dataclasses.dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    max_concurrent: int = 0  # requests at once; 0: no limit
    images_per_day: int = 0  # images per UTC day; 0: no limit
    role: str = MEMBER

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


ANONYMOUS = ApiKey("", "", role=ADMIN)  # the open server's caller: sees all, as before keys


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyFileError(ValueError):
    pass


def read_file(path: Path) -> list[ApiKey]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise KeyFileError(f'{path}: expected {{"keys": [...]}}')
    keys, names = [], set()
    for i, entry in enumerate(entries):
        try:
            key = ApiKey(
                str(entry["name"]),
                str(entry["sha256"]).lower(),
                int(entry.get("max_concurrent", 0)),
                int(entry.get("images_per_day", 0)),
                str(entry.get("role", MEMBER)),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise KeyFileError(f"{path}: keys[{i}] needs a name and a sha256") from None
        if key.role not in ROLES:
            raise KeyFileError(
                f"{path}: keys[{i}] has role {key.role!r}; it must be one of {', '.join(ROLES)}"
            )
        if len(key.sha256) != 64 or key.name in names or not key.name:
            raise KeyFileError(f"{path}: keys[{i}] has a bad sha256 or a missing or repeated name")
        names.add(key.name)
        keys.append(key)
    return keys


def add_to_file(
    path: Path, name: str, max_concurrent: int = 0, images_per_day: int = 0, role: str = MEMBER
) -> str:
    """Make a new key, record its hash under `name`, return the key (shown once)."""
    if role not in ROLES:
        raise KeyFileError(f"role {role!r} is not one of {', '.join(ROLES)}")
    keys = read_file(path)
    if any(k.name == name for k in keys):
        raise KeyFileError(f"a key named {name!r} already exists in {path}")
    key = "cis_" + secrets.token_urlsafe(32)
    keys.append(ApiKey(name, digest(key), max_concurrent, images_per_day, role))
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [dataclasses.asdict(k) for k in keys]}, indent=2).encode()
    write_atomic(path, body)
    os.chmod(path, 0o600)
    return key


class Keyring:
    """The one check every surface shares: `identify` a presented key."""

    def __init__(self, env_keys: tuple[str, ...], keys_file: Path | None):
        self._env = [ApiKey(DEFAULT_NAME, digest(k), role=ADMIN) for k in env_keys]
        self._file = keys_file
        self._lock = threading.Lock()
        self._keys: list[ApiKey] = []
        self.reload()

    def reload(self) -> int:
        """Re-read the keys file; a broken file keeps the keys in force."""
        keys = read_file(self._file) if self._file else []
        with self._lock:
            self._keys = self._env + keys
        return len(keys)

    # `_keys` is replaced whole under the lock, never changed in place: the
    # per-call readers below take it with one (atomic) read, no lock.

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def by_name(self, name: str) -> ApiKey | None:
        with self._lock:
            return next((k for k in self._keys if k.name == name), None)

    def identify(self, presented: str) -> ApiKey | None:
        """The key's entry; ANONYMOUS when no keys are configured; None when refused."""
        keys = self._keys
        if not keys:
            return ANONYMOUS
        if not presented:
            return None
        wanted = digest(presented).encode()
        # Every entry is compared, without stopping early.
        found = None
        for key in keys:
            if hmac.compare_digest(wanted, key.sha256.encode()):
                found = key
        return found
