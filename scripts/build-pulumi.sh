#!/usr/bin/env bash
# Builds the Pulumi CLI (and, with --kubernetes, the Kubernetes resource plugin) from Go modules,
# because no package registry ships the CLI. Cached by version: a second run is a no-op.
#
#   scripts/build-pulumi.sh [--kubernetes]      prints the directory holding `pulumi`
#
# Output: $SOPHIA_TOOLS_DIR/pulumi-vX.Y.Z/ with `pulumi` and `pulumi-resource-pulumi-python`
# (Python dynamic providers need it next to the CLI), and with --kubernetes also
# `pulumi-resource-kubernetes` (installed into PULUMI_HOME by the caller or by tests).
# Recipe and pitfalls: docs/pulumi-cli-from-source.md.
set -euo pipefail

PULUMI_VERSION="${SOPHIA_PULUMI_VERSION:-3.276.0}"
# The Go module proxy serves one pseudo-version of the provider (the code of v4.25.0); the
# plugin's stamped version must equal the pinned PyPI SDK (pulumi-kubernetes==4.25.0).
K8S_VERSION="4.25.0"
K8S_PROVIDER_MODULE="github.com/pulumi/pulumi-kubernetes/provider/v4"
K8S_PROVIDER_PSEUDO="v4.0.0-20260115033456-f47bc2d6f199"

want_k8s=0
for arg in "$@"; do
  case "$arg" in
    --kubernetes) want_k8s=1 ;;
    *) echo "usage: $0 [--kubernetes]" >&2; exit 2 ;;
  esac
done

tools_dir="${SOPHIA_TOOLS_DIR:-$HOME/.cache/sophia/tools}"
out="$tools_dir/pulumi-v$PULUMI_VERSION"
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { echo "build-pulumi: $*" >&2; }

# Copies the versioned replace directives of a module's go.mod (given as a file) into the wrapper
# module in the current directory; local ones (`=> ../sdk`) become plain requires instead.
copy_replaces() {
  python3 - "$1" <<'PY' | while read -r rep; do go mod edit -replace="$rep"; done
import re, sys
text = open(sys.argv[1]).read()
lines = []
for block in re.findall(r"^replace \((.*?)^\)", text, re.M | re.S):
    lines += block.splitlines()
lines += [m for m in re.findall(r"^replace (.+)$", text, re.M) if not m.startswith("(")]
for line in lines:
    line = line.split("//")[0].strip()
    if "=>" not in line:
        continue
    old, new = (part.strip() for part in line.split("=>"))
    parts = new.split()
    if len(parts) != 2 or parts[0].startswith("."):
        continue  # local path replace
    print(f"{old.replace(' ', '@')}={parts[0]}@{parts[1]}")
PY
}

build_cli() {
  if [[ -x "$out/pulumi" && -x "$out/pulumi-resource-pulumi-python" ]] \
    && [[ "$("$out/pulumi" version 2>/dev/null)" == "v$PULUMI_VERSION" ]]; then
    return
  fi
  log "building the Pulumi CLI v$PULUMI_VERSION from Go modules (about 5 minutes cold)"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init sophia.local/pulumi-wrapper >/dev/null 2>&1
    go mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
      -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
    # pkg/go.mod has replace directives that `go install` refuses; copy its versioned ones
    # (local ones like `sdk/v3 => ../sdk` become the plain require above).
    local gomod
    gomod="$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    copy_replaces "$gomod"
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
    go mod tidy -e >/dev/null 2>&1 || go mod tidy
    go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$out/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    sdk_dir="$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
    install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$out/"
    mv "$out/pulumi.tmp" "$out/pulumi"
  )
}

build_k8s() {
  if [[ -x "$out/pulumi-resource-kubernetes" ]]; then
    return
  fi
  log "building pulumi-resource-kubernetes v$K8S_VERSION from Go modules (about 6 minutes cold)"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init sophia.local/k8s-wrapper >/dev/null 2>&1
    go mod edit -require="$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO" \
      -require="github.com/pulumi/pulumi-kubernetes/sdk/v4@v$K8S_VERSION"
    go mod download -json "$K8S_PROVIDER_MODULE@$K8S_PROVIDER_PSEUDO" >"$work/provider.json"
    provider_dir="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$work/provider.json")"
    provider_mod="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["GoMod"])' "$work/provider.json")"
    copy_replaces "$provider_mod"
    # main.go embeds generated files missing from the module zip: copy the command and generate.
    mkdir -p cmd
    cp -r "$provider_dir/cmd/pulumi-resource-kubernetes" cmd/
    chmod -R u+w cmd
    go mod tidy -e >/dev/null 2>&1 || go mod tidy
    (cd cmd/pulumi-resource-kubernetes && VERSION="$K8S_VERSION" go run generate.go)
    go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_VERSION" \
      -o "$out/pulumi-resource-kubernetes.tmp" ./cmd/pulumi-resource-kubernetes
    mv "$out/pulumi-resource-kubernetes.tmp" "$out/pulumi-resource-kubernetes"
  )
}

build_cli
if [[ "$want_k8s" == 1 ]]; then
  build_k8s
fi
echo "$out"
