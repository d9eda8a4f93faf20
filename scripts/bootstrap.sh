#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine: Debian packages (redis, nginx,
# the PocketSphinx test audio, sox, Chromium for the browser tests) and a virtual
# environment in .venv with the three packages installed in editable mode. Quick when
# nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(redis-server nginx-light pocketsphinx-testdata sox chromium prometheus redis-sentinel)
PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.installed

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these as system services on install where it can; the project runs its
  # own instances on its own ports, so the system ones are not needed.
fi

inputs=(constraints.txt requirements-dev.txt services/gateway/pyproject.toml
        services/asr-cpu/pyproject.toml clients/python/pyproject.toml)
digest=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  echo "bootstrap: creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
echo "bootstrap: installing Python packages into $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -c constraints.txt \
  -e services/gateway -e services/asr-cpu -e clients/python -r requirements-dev.txt
echo "$digest" > "$STAMP"
