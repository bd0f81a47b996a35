#!/usr/bin/env bash
# Creates bench/.venv-checkdmarc: checkdmarc for the latency comparison, kept apart from the
# project's own environment (checkdmarc is not a dependency of SendReady).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-checkdmarc"
version="${CHECKDMARC_VERSION:-6.0.4}"
if [ ! -x "$venv/bin/python" ]; then
    python3.11 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import checkdmarc' 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check "checkdmarc==$version"
fi
"$venv/bin/python" -c 'import checkdmarc; print("checkdmarc", checkdmarc.__version__)'
