#!/usr/bin/env bash
# Build the Pulumi CLI from the Go module proxy and fetch the SDK's Python helper scripts.
# These machines cannot reach Pulumi's download site; see docs/engine.md.
#
# Output goes to a per-machine cache keyed by version, so a fresh clone on the same machine reuses it:
#   ${HASTACK_CACHE:-~/.cache/hastack}/pulumi-<ver>/bin/{pulumi,pulumi-language-python-exec,pulumi-resource-pulumi-python}
set -euo pipefail

VER="${PULUMI_VERSION:-3.274.1}"
CACHE="${HASTACK_CACHE:-$HOME/.cache/hastack}/pulumi-$VER"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

if [ ! -x "$BIN/pulumi" ]; then
  command -v go >/dev/null || { echo "error: no 'pulumi' on PATH and no Go toolchain to build it" >&2; exit 1; }
  echo "  engine: building pulumi v$VER from the Go module proxy (cold build: about 8 minutes on 2 cores)"
  W="$CACHE/src-cli"
  rm -rf "$W"; mkdir -p "$W"
  # A throwaway module that pins pkg/v3 and sdk/v3 at the same version: `go install` refuses pkg/v3
  # because its go.mod has replace directives.
  (cd "$W" && go mod init hastack.local/pulumibuild >/dev/null 2>&1)
  printf '//go:build tools\npackage tools\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > "$W/tools.go"
  (cd "$W" \
    && go get "github.com/pulumi/pulumi/pkg/v3@v$VER" "github.com/pulumi/pulumi/sdk/v3@v$VER" >"$W/get.log" 2>&1 \
    && go mod tidy >>"$W/get.log" 2>&1 \
    && go build -trimpath -tags osusergo,grpcnotrace \
         -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VER" \
         -o "$BIN/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) \
    || { echo "error: building pulumi failed; last lines of $W/get.log:" >&2; tail -20 "$W/get.log" >&2; exit 1; }
  mv "$BIN/pulumi.tmp" "$BIN/pulumi"
fi

if [ ! -x "$BIN/pulumi-language-python-exec" ]; then
  # The language host's companion scripts live in the sdk/v3 module. Module-cache files are read-only,
  # so copy them with an explicit mode.
  dir=$(cd /tmp && go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$VER" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  install -m 0755 "$dir/python/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python.sdk"
fi
echo "  engine: pulumi $("$BIN/pulumi" version) (cache: $BIN)"
