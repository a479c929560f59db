# Sourced by scripts/demo and scripts/test: make .venv if missing and install dmalint into it.
# $1: the pip extra to install ("" or "test").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extra="${1:-}"
spec="."
[ -n "$extra" ] && spec=".[$extra]"
stamp=".venv/.dmalint-installed-$extra"
# Reinstall only when pyproject.toml changed since the last install (fast reruns).
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log=.venv/pip-install.log
  echo "Installing dmalint${extra:+ with its $extra extras} into .venv ..." >&2
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
         && .venv/bin/python -m pip install --disable-pip-version-check -e "$spec"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: installing dmalint into .venv failed (log above, also in $log)" >&2
    exit 2
  fi
  touch "$stamp"
fi
