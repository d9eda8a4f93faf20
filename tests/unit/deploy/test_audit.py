"""`make audit`'s inputs and its refusal to pass when it could not run (no network: a
local HTTP server stands for the vulnerability service)."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Iterator

import pytest

from deploy.audit import REPO, AuditError, accepted, check_service, pins
from tests.support.processes import free_port

TODAY = dt.date(2026, 12, 7)


def test_every_line_of_the_projects_constraints_is_an_exact_pin() -> None:
    found = dict(pins((REPO / "constraints.txt").read_text()))
    assert found["fastapi"]
    assert found["pip-audit"]


@pytest.mark.parametrize("line", ["fastapi>=0.1", "fastapi", "fastapi==0.1 ; extra"])
def test_a_loose_pin_fails_the_audit(line: str) -> None:
    with pytest.raises(AuditError, match="exact pin"):
        pins(f"# a comment\nuvicorn==0.54.0\n{line}\n")


def test_the_ignore_list_needs_an_id_a_date_and_a_reason() -> None:
    text = "# header\nGHSA-aaaa-bbbb-cccc | 2027-01-31 | the vulnerable parser is never used\n"
    (entry,) = accepted(text, TODAY)
    assert (entry.vuln_id, entry.until) == ("GHSA-aaaa-bbbb-cccc", dt.date(2027, 1, 31))
    for bad in ["GHSA-x | 2027-01-31", "GHSA-x | 2027-01-31 |", "GHSA-x | soon | reason"]:
        with pytest.raises(AuditError):
            accepted(bad, TODAY)


def test_an_acceptance_past_its_date_fails_the_audit() -> None:
    with pytest.raises(AuditError, match="ended on 2026-12-06"):
        accepted("PYSEC-2026-1 | 2026-12-06 | waiting for a release", TODAY)


def test_the_projects_ignore_list_is_valid_today() -> None:
    accepted((REPO / "deploy" / "pip-audit-ignore.txt").read_text(), dt.date.today())


class _Service(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/fastapi/0.165.0/json" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_service_that_answers_lets_the_audit_run(service: str) -> None:
    check_service("fastapi", "0.165.0", base=service)


def test_a_service_without_the_release_fails_loudly(service: str) -> None:
    with pytest.raises(AuditError, match="answered 404"):
        check_service("fastapi", "9.9.9", base=service)


def test_an_unreachable_service_fails_loudly() -> None:
    with pytest.raises(AuditError, match="unreachable"):
        check_service("fastapi", "0.165.0", base=f"http://127.0.0.1:{free_port()}", timeout_s=2)
