"""API keys per tenant, kept hashed in a JSON file that is re-read when it changes.

A key is `sgk_<id>_<secret>`: `<id>` (12 of [a-z0-9]) finds its entry, and the SHA-256 of
the whole key is compared in constant time with the stored hash (the secret has 256 bits
of entropy, so a plain hash is enough: nothing to brute-force). The file holds only hashes:

    {"version": 1, "keys": [
      {"id": "3f9a0c1d2b4e", "tenant": "acme", "sha256": "<hex>", "created": "2026-12-07T20:00:00Z"}
    ]}

`python -m gateway.auth.keys add --tenant acme --file keys.json` makes a key, stores its
hash and prints the key once; `list` and `revoke --id ID` do what they say. In Kubernetes
the file is a Secret mounted as a volume: the kubelet swaps a symlink when the Secret
changes, so the lookup compares the file's inode, size and mtime (one `stat`, at most once
a second) and reads it again when they change; revoking a key takes effect within about
a second of the file changing, and no restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.auth.principal import TENANT_RE

log = logging.getLogger(__name__)

KEY_PREFIX = "sgk_"
_KEY_RE = re.compile(r"sgk_([a-z0-9]{12})_[A-Za-z0-9_-]{43}")
_ID_RE = re.compile(r"[a-z0-9]{12}")
_HASH_RE = re.compile(r"[0-9a-f]{64}")
FORMAT_VERSION = 1


class KeyFileError(Exception):
    """The keys file cannot be read or is not in the documented format."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenant: str
    sha256: str  # hex digest of the whole key


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, key)."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(credential: str) -> str | None:
    """The id inside a well-formed key, or None."""
    match = _KEY_RE.fullmatch(credential)
    return match.group(1) if match else None


def parse_keys(text: str) -> dict[str, ApiKey]:
    """The keys of a file's text, by id; KeyFileError if it is not the documented format."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise KeyFileError(f'expected {{"version": {FORMAT_VERSION}, "keys": [...]}}')
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise KeyFileError('"keys" must be a list')
    keys: dict[str, ApiKey] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise KeyFileError(f"keys[{i}] is not an object")
        key_id, tenant, digest = entry.get("id"), entry.get("tenant"), entry.get("sha256")
        if not isinstance(key_id, str) or not _ID_RE.fullmatch(key_id):
            raise KeyFileError(f"keys[{i}].id must be 12 of [a-z0-9]")
        if not isinstance(tenant, str) or not TENANT_RE.fullmatch(tenant):
            raise KeyFileError(f"keys[{i}].tenant must match {TENANT_RE.pattern}")
        if not isinstance(digest, str) or not _HASH_RE.fullmatch(digest):
            raise KeyFileError(f"keys[{i}].sha256 must be 64 lowercase hex digits")
        if key_id in keys:
            raise KeyFileError(f"keys[{i}].id {key_id} appears twice")
        keys[key_id] = ApiKey(key_id, tenant, digest)
    return keys


def read_keys(path: Path) -> dict[str, ApiKey]:
    try:
        return parse_keys(path.read_text())
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror}") from None


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    # stat follows the symlink a Secret volume swaps: a new Secret is a new inode.
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class KeyFile:
    """The keys of one file, read at start (KeyFileError if unreadable) and again when the
    file changes. A change that does not parse keeps the keys in force (and says so once)."""

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_every_s = check_every_s
        self._clock = clock
        self._seen = _signature(path)
        self.keys = read_keys(path)
        self._checked_at = clock()

    async def lookup(self, credential: str) -> ApiKey | None:
        """The key `credential` is, or None."""
        key_id = key_id_of(credential)
        if key_id is None:
            return None
        await self._maybe_reload()
        entry = self.keys.get(key_id)
        if entry is None or not hmac.compare_digest(hash_key(credential), entry.sha256):
            return None
        return entry

    async def _maybe_reload(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._check_every_s:
            return
        # Set first: callers that arrive while the file is read use the keys in force.
        self._checked_at = now
        signature = _signature(self.path)
        if signature is None or signature == self._seen:
            return
        self._seen = signature
        try:
            # Off the event loop: a Secret volume may be slow to read.
            self.keys = await asyncio.to_thread(read_keys, self.path)
        except KeyFileError as exc:
            log.warning("API keys file changed but was not loaded (keys in force kept): %s", exc)
            return
        log.info("API keys reloaded from %s: %d keys", self.path, len(self.keys))


# ---- the command line: add, list, revoke ---------------------------------------------------


def _load_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    parse_keys(path.read_text())  # refuse to rewrite a file that is not ours
    entries: list[dict[str, object]] = json.loads(path.read_text())["keys"]
    return entries


def _write_entries(path: Path, entries: list[dict[str, object]]) -> None:
    # Written beside and renamed: a reader never sees half a file.
    text = json.dumps({"version": FORMAT_VERSION, "keys": entries}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.auth.keys", description="Manage the gateway's API keys file."
    )
    parser.add_argument(
        "--file",
        default=os.environ.get("AUTH__API_KEYS_FILE", ""),
        help="the keys file (default: $AUTH__API_KEYS_FILE)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="make a key for a tenant; prints it once")
    add.add_argument("--tenant", required=True)
    commands.add_parser("list", help="ids and tenants (never keys)")
    revoke = commands.add_parser("revoke", help="remove a key by id")
    revoke.add_argument("--id", required=True)
    args = parser.parse_args(argv)
    if not args.file:
        parser.error("give --file or set AUTH__API_KEYS_FILE")
    path = Path(args.file)
    try:
        entries = _load_entries(path)
    except KeyFileError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    if args.command == "add":
        if not TENANT_RE.fullmatch(args.tenant):
            parser.error(f"--tenant must match {TENANT_RE.pattern}")
        key_id, key = new_key()
        created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(
            {"id": key_id, "tenant": args.tenant, "sha256": hash_key(key), "created": created}
        )
        _write_entries(path, entries)
        print(key)
        print(f"key id {key_id} for tenant {args.tenant} added to {path}", file=sys.stderr)
    elif args.command == "list":
        for entry in entries:
            print(f"{entry['id']}  {entry['tenant']}  {entry.get('created', '')}")
    else:
        kept = [e for e in entries if e["id"] != args.id]
        if len(kept) == len(entries):
            print(f"no key with id {args.id} in {path}", file=sys.stderr)
            return 1
        _write_entries(path, kept)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
