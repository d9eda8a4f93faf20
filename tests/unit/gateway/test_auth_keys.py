"""API keys: hashed in the file, compared in constant time, re-read when the file changes
(also when a Kubernetes Secret volume swaps its symlink), and the command that adds one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.auth.keys import KeyFile, KeyFileError, hash_key, main, new_key, parse_keys


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_keys(path: Path, *entries: tuple[str, str, str]) -> None:
    """entries: (key id, tenant, key)."""
    keys = [{"id": i, "tenant": t, "sha256": hash_key(k)} for i, t, k in entries]
    path.write_text(json.dumps({"version": 1, "keys": keys}))


async def test_a_key_is_found_by_id_and_checked_by_hash(tmp_path: Path) -> None:
    key_id, key = new_key()
    path = tmp_path / "keys.json"
    write_keys(path, (key_id, "acme", key))
    assert key not in path.read_text()  # only the hash is stored
    keys = KeyFile(path)
    found = await keys.lookup(key)
    assert found is not None
    assert (found.key_id, found.tenant) == (key_id, "acme")
    # The right id with another secret, a malformed key, an unknown id: all refused.
    assert await keys.lookup(key[:-4] + "AAAA") is None
    assert await keys.lookup("sgk_short") is None
    assert await keys.lookup(new_key()[1]) is None


async def test_the_file_is_re_read_when_it_changes_at_most_once_a_second(tmp_path: Path) -> None:
    old_id, old_key = new_key()
    new_id, fresh_key = new_key()
    path = tmp_path / "keys.json"
    write_keys(path, (old_id, "acme", old_key))
    clock = Clock()
    keys = KeyFile(path, clock=clock)
    write_keys(path, (new_id, "acme", fresh_key))
    os.utime(path, ns=(1, 10**18))  # a distinct mtime even on a coarse clock
    clock.now = 0.5
    assert await keys.lookup(old_key) is not None  # not checked yet: within the second
    clock.now = 1.5
    assert await keys.lookup(old_key) is None  # revoked
    assert await keys.lookup(fresh_key) is not None


async def test_a_secret_volume_swapping_its_symlink_is_seen(tmp_path: Path) -> None:
    # The kubelet's layout: keys.json -> ..data/keys.json, ..data -> ..<timestamp>.
    first, second = tmp_path / "..2026_1", tmp_path / "..2026_2"
    first.mkdir(), second.mkdir()
    a_id, a_key = new_key()
    b_id, b_key = new_key()
    write_keys(first / "keys.json", (a_id, "acme", a_key))
    write_keys(second / "keys.json", (b_id, "globex", b_key))
    (tmp_path / "..data").symlink_to(first.name)
    (tmp_path / "keys.json").symlink_to("..data/keys.json")
    clock = Clock()
    keys = KeyFile(tmp_path / "keys.json", clock=clock)
    assert await keys.lookup(a_key) is not None
    (tmp_path / "..data_tmp").symlink_to(second.name)
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    clock.now = 2.0
    found = await keys.lookup(b_key)
    assert found is not None
    assert found.tenant == "globex"
    assert await keys.lookup(a_key) is None


async def test_a_broken_change_keeps_the_keys_in_force(tmp_path: Path) -> None:
    key_id, key = new_key()
    path = tmp_path / "keys.json"
    write_keys(path, (key_id, "acme", key))
    clock = Clock()
    keys = KeyFile(path, clock=clock)
    path.write_text("{not json")
    clock.now = 2.0
    assert await keys.lookup(key) is not None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "version"),
        ('{"version": 1, "keys": [{"id": "UPPER", "tenant": "a", "sha256": "00"}]}', "id"),
        (
            '{"version": 1, "keys": [{"id": "abcdefabcdef", "tenant": "a/b", "sha256": "0"}]}',
            "tenant",
        ),
        (
            '{"version": 1, "keys": [{"id": "abcdefabcdef", "tenant": "a", "sha256": "xyz"}]}',
            "sha256",
        ),
    ],
)
def test_a_file_not_in_the_format_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(KeyFileError, match=why):
        parse_keys(text)


async def test_the_add_command_prints_the_key_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    assert main(["--file", str(path), "add", "--tenant", "acme"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("sgk_")
    assert key not in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    found = await KeyFile(path).lookup(key)
    assert found is not None
    assert found.tenant == "acme"
    assert main(["--file", str(path), "revoke", "--id", found.key_id]) == 0
    assert await KeyFile(path).lookup(key) is None
