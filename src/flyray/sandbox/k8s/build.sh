#!/usr/bin/env bash
# Build the real Kubernetes binaries the sandbox (and the realkube tests) run, from the Go
# module proxy, pinned by go.mod and go.sum next to this script (scripts/bump-k8s.sh changes
# the release), and KubeRay's operator, pinned by kuberay-operator.version (built from its own
# module, with its own go.sum, which the checksum database vouches for).
#
#   bash src/flyray/sandbox/k8s/build.sh [BINARY...]
#
# BINARY: kube-apiserver, etcd, kube-controller-manager, kuberay-operator (the default: all
# four), kube-scheduler. Binaries go to ${FLYRAY_K8S_CACHE:-$HOME/.cache/flyray/k8s}/<k8s
# version>/bin, outside the repo; one already there, built from the same pins, is reused, not
# rebuilt. The last line printed is that folder.
set -euo pipefail
cd "$(dirname "$0")"
MODULE_DIR=.
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[[ -x $GO ]] || { echo "build-k8s: no Go toolchain (looked for 'go' on PATH and $GO)" >&2; exit 1; }

K8S_VERSION=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$MODULE_DIR/go.mod")
[[ $K8S_VERSION =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "build-k8s: no k8s.io/kubernetes in go.mod" >&2; exit 1; }
K8S_MAJOR=${BASH_REMATCH[1]} K8S_MINOR=${BASH_REMATCH[2]}
BIN_DIR=${FLYRAY_K8S_CACHE:-$HOME/.cache/flyray/k8s}/$K8S_VERSION/bin
KUBERAY_VERSION=$(tr -d '[:space:]' <"$MODULE_DIR/kuberay-operator.version")
[[ $KUBERAY_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    { echo "build-k8s: no version in $MODULE_DIR/kuberay-operator.version" >&2; exit 1; }

declare -A PACKAGES=(
    [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
    [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
    [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
    [etcd]=go.etcd.io/etcd/server/v3
    # A module@version is built on its own (`go install`), not from go.mod here.
    [kuberay-operator]=github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION
)
WANTED=("$@")
[[ ${#WANTED[@]} -gt 0 ]] || WANTED=(kube-apiserver etcd kube-controller-manager kuberay-operator)

# The version stamps Kubernetes' own build (hack/lib/version.sh) writes; unstamped, the
# server reports v0.0.0-master.
STAMP=k8s.io/component-base/version
LDFLAGS="-s -w -X $STAMP.gitVersion=$K8S_VERSION -X $STAMP.gitMajor=$K8S_MAJOR"
LDFLAGS+=" -X $STAMP.gitMinor=$K8S_MINOR -X $STAMP.gitTreeState=clean"
LDFLAGS+=" -X $STAMP.buildDate=1970-01-01T00:00:00Z"

# Which go.mod and go.sum a binary was built from: a change there rebuilds it.
SOURCE_HASH=$(cat "$MODULE_DIR/go.mod" "$MODULE_DIR/go.sum" | sha256sum | cut -c1-16)
# A module@version is its own source: its name (version included) and how it is linked.
OPERATOR_LDFLAGS="-s -w"
source_hash() {
    if [[ $1 == *@* ]]; then
        printf '%s %s\n' "$1" "$OPERATOR_LDFLAGS" | sha256sum | cut -c1-16
    else
        echo "$SOURCE_HASH"
    fi
}

# Build package $1 into file $2: a module@version on its own (its go.mod and go.sum, whatever
# GOFLAGS says), anything else from go.mod here. Go names the installed command after the last
# element of the module path, so it goes to a private GOBIN first.
build_one() {
    local package=$1 out=$2
    if [[ $package == *@* ]]; then
        local gobin=$BIN_DIR/.gobin
        rm -rf "$gobin"
        (cd "$BIN_DIR" && GOBIN=$gobin GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" install -trimpath \
            -ldflags="$OPERATOR_LDFLAGS" "$package")
        mv -f "$gobin/$(basename "${package%@*}")" "$out"
        rm -rf "$gobin"
    else
        (cd "$MODULE_DIR" && CGO_ENABLED=0 "$GO" build -mod=readonly -trimpath \
            -ldflags="$LDFLAGS" -o "$out" "$package")
    fi
}

mkdir -p "$BIN_DIR"
exec 9>"$BIN_DIR/.lock"
flock 9  # one build at a time per cache folder; a second caller then finds the binaries
start=$SECONDS
for name in "${WANTED[@]}"; do
    package=${PACKAGES[$name]:-}
    [[ -n $package ]] || { echo "build-k8s: unknown binary '$name' (know: ${!PACKAGES[*]})" >&2; exit 2; }
    source=$(source_hash "$package")
    if [[ -x $BIN_DIR/$name && $(cat "$BIN_DIR/.$name.source" 2>/dev/null) == "$source" ]]; then
        echo "build-k8s: $name ($package): cached"
        continue
    fi
    echo "build-k8s: building $name ($package)"
    began=$SECONDS
    # Build to a temporary name and rename, so an interrupted build never looks present.
    build_one "$package" "$BIN_DIR/.$name.partial"
    mv -f "$BIN_DIR/.$name.partial" "$BIN_DIR/$name"
    echo "$source" >"$BIN_DIR/.$name.source"
    echo "build-k8s: built $name in $((SECONDS - began)) s"
done
echo "build-k8s: done in $((SECONDS - start)) s"
echo "$BIN_DIR"
