#!/usr/bin/env bash
# make setup: everything hastack needs on this machine, idempotently. A second run takes seconds.
#   1. the project virtualenv (.venv) with hastack (editable) and the dev tools
#   2. the Pulumi engine in .tools/bin: a `pulumi` on PATH if there is one, otherwise built from the Go
#      module proxy into a per-machine cache (~/.cache/hastack), plus the Python language host
#   3. the services of the local platform (scripts/install-services.sh)
#   4. .tools/env, which sets the engine environment for plain `pulumi` commands
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
VER="${PULUMI_VERSION:-3.274.1}"
CACHE="${HASTACK_CACHE:-$HOME/.cache/hastack}"
PY="${PYTHON:-python3}"
mkdir -p "$BIN" "$ROOT/.state/backend" "$ROOT/.state/pulumi-home"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
t0=$(date +%s)

# ---------------------------------------------------------------------------------------------
step "python: project virtualenv (.venv)"
stamp="$ROOT/.venv/.hastack-stamp"
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
  echo "  installed hastack and dev tools into .venv"
else
  echo "  .venv is up to date"
fi

# ---------------------------------------------------------------------------------------------
step "engine: pulumi v$VER"
# Prefer a pulumi that the user already has on PATH (outside our tools folder).
path_pulumi=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -vx "$BIN" | paste -sd:) command -v pulumi || true)
if [ -n "$path_pulumi" ]; then
  ln -sfn "$path_pulumi" "$BIN/pulumi"
  echo "  using pulumi from PATH: $path_pulumi ($("$path_pulumi" version))"
  real_host=$(dirname "$path_pulumi")/pulumi-language-python
else
  bash "$ROOT/scripts/build-pulumi.sh"
  # A hard link (or copy), not a symlink: the engine looks for its language host beside its own
  # resolved path, which must be .tools/bin.
  ln -f "$CACHE/pulumi-$VER/bin/pulumi" "$BIN/pulumi" 2>/dev/null || cp -f "$CACHE/pulumi-$VER/bin/pulumi" "$BIN/pulumi"
  real_host=""
fi

if [ -n "$real_host" ] && [ -x "$real_host" ]; then
  ln -sfn "$real_host" "$BIN/pulumi-language-python"
  echo "  language host: Pulumi's own, from $real_host"
else
  # Pulumi's Go language host is not served by the Go module proxy here (every version answers 403);
  # hastack ships a small Python implementation of the same gRPC service. See docs/engine.md.
  [ -x "$CACHE/pulumi-$VER/bin/pulumi-language-python-exec" ] || bash "$ROOT/scripts/build-pulumi.sh"
  install -m 0755 "$CACHE/pulumi-$VER/bin/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  cat > "$BIN/pulumi-language-python" <<SH
#!/bin/sh
# hastack's Python language host (scripts/langhost); Pulumi's Go host cannot be obtained offline.
HASTACK_LANGHOST_DIR="$BIN" HASTACK_PULUMI_VERSION="$VER" exec "$ROOT/.venv/bin/python" "$ROOT/scripts/langhost/pulumi_language_python.py" "\$@"
SH
  chmod 0755 "$BIN/pulumi-language-python"
  echo "  language host: hastack's (scripts/langhost/pulumi_language_python.py)"
fi

# Dynamic providers start from the program folder (stacks/), where Pulumi.yaml's relative virtualenv does
# not resolve; run them with the project virtualenv directly.
cat > "$BIN/pulumi-resource-pulumi-python" <<SH
#!/bin/sh
exec "$ROOT/.venv/bin/python" -u -m pulumi.dynamic "\$@"
SH
# Policy packs: the launcher the engine looks for when the language host does not run them itself.
cat > "$BIN/pulumi-analyzer-policy-python" <<SH
#!/bin/sh
exec "$ROOT/.venv/bin/python" -u -m pulumi.policy "\$@"
SH
chmod 0755 "$BIN/pulumi-resource-pulumi-python" "$BIN/pulumi-analyzer-policy-python"

# ---------------------------------------------------------------------------------------------
step "services: postgres, patroni, consul, haproxy, nginx, prometheus"
TOOLS_DIR="$TOOLS" bash "$ROOT/scripts/install-services.sh"

# ---------------------------------------------------------------------------------------------
step "environment: .tools/env"
cat > "$TOOLS/env" <<SH
# Source this file to run plain \`pulumi\` commands against hastack's local engine setup:
#   source .tools/env && pulumi preview --stack local
export PATH="$BIN:$ROOT/.venv/bin:\$PATH"
export PULUMI_HOME="$ROOT/.state/pulumi-home"
export PULUMI_BACKEND_URL="file://$ROOT/.state/backend"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# Encrypts the *local* stack's secrets in the file backend. It protects nothing on a shared machine and is
# for the local stack only: use a real passphrase or a KMS secrets provider for dev and prod.
export PULUMI_CONFIG_PASSPHRASE="\${PULUMI_CONFIG_PASSPHRASE-hastack-local-only}"
SH
echo "  wrote .tools/env (source it for plain pulumi commands)"

echo "setup done in $(( $(date +%s) - t0 ))s"
