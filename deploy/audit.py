"""`make audit`: pip-audit against the pinned set (constraints.txt), failing on any known
vulnerability that `deploy/pip-audit-ignore.txt` does not accept, on an accepted one past
its date, and on a vulnerability service that does not answer: an audit that could not
run never passes.

    python -m deploy.audit [--constraints constraints.txt] [--ignore deploy/pip-audit-ignore.txt]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# pip-audit's PyPI service reads each release's JSON here (its `vulnerabilities`).
SERVICE = "https://pypi.org/pypi"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


class AuditError(Exception):
    """The audit cannot run or its inputs are wrong: always a failure."""


@dataclass(frozen=True)
class Accepted:
    """A known vulnerability accepted until a date, for a stated reason."""

    vuln_id: str
    until: dt.date
    why: str


def pins(constraints: str) -> list[tuple[str, str]]:
    """(name, version) of every line of a constraints file; each must be an exact pin."""
    found = []
    for raw in constraints.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise AuditError(f"not an exact pin (name==version): {raw!r}")
        found.append((match[1], match[2]))
    if not found:
        raise AuditError("no pins to audit")
    return found


def accepted(text: str, today: dt.date) -> list[Accepted]:
    """The ignore list: `ID | YYYY-MM-DD | why` per line. A line without a reason, or past
    its date, fails the audit: someone must look again."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise AuditError(f"line {number}: expected 'ID | YYYY-MM-DD | why': {raw!r}")
        vuln_id, until_text, why = parts
        try:
            until = dt.date.fromisoformat(until_text)
        except ValueError:
            raise AuditError(f"line {number}: {until_text!r} is not a date") from None
        if until < today:
            raise AuditError(f"line {number}: the acceptance of {vuln_id} ended on {until}")
        entries.append(Accepted(vuln_id, until, why))
    return entries


def check_service(name: str, version: str, base: str = SERVICE, timeout_s: float = 15.0) -> None:
    """Fail loudly unless the vulnerability service answers for one pinned release."""
    url = f"{base}/{name}/{version}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        raise AuditError(f"the vulnerability service is unreachable ({url}): {exc}") from exc
    if status != 200:
        raise AuditError(
            f"the vulnerability service answered {status} for {url}: the pinned set "
            "cannot be audited here"
        )


def run(constraints: Path, ignore: Path) -> int:
    pinned = pins(constraints.read_text())
    entries = accepted(ignore.read_text(), dt.date.today())
    check_service(*pinned[0])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="pinned-") as requirements:
        requirements.write("".join(f"{name}=={version}\n" for name, version in pinned))
        requirements.flush()
        argv = [
            str(VENV_BIN / "pip-audit"), "-r", requirements.name,
            # Every pin is exact and the file holds the whole set: nothing to resolve.
            "--no-deps", "--disable-pip", "--vulnerability-service", "pypi",
            # A release the service cannot tell about fails the audit (no silent skip).
            "--strict", "--progress-spinner", "off",
        ]  # fmt: skip
        for entry in entries:
            argv += ["--ignore-vuln", entry.vuln_id]
        return subprocess.run(argv, check=False).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, default=REPO / "constraints.txt")
    parser.add_argument("--ignore", type=Path, default=REPO / "deploy" / "pip-audit-ignore.txt")
    args = parser.parse_args()
    try:
        code = run(args.constraints, args.ignore)
    except AuditError as exc:
        print(f"audit: FAILED: {exc}", file=sys.stderr)
        sys.exit(2)
    if code:
        print("audit: FAILED: known vulnerabilities in the pinned set (above)", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
