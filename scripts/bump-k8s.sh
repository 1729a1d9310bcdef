#!/usr/bin/env bash
# Point src/flyray/sandbox/k8s/go.mod at another Kubernetes release, then `go mod tidy`:
#   bash scripts/bump-k8s.sh v1.36.3
# k8s.io/kubernetes@VERSION is required, and each staging module it requires (read from that
# release's own go.mod: required at v0.0.0 and replaced by ./staging/...) is replaced by the
# published v0.MINOR.PATCH; etcd's server module at the version that release requires.
set -euo pipefail
cd "$(dirname "$0")/../src/flyray/sandbox/k8s"
VERSION=${1:?usage: bash scripts/bump-k8s.sh vMAJOR.MINOR.PATCH}
[[ $VERSION =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "bump-k8s: not a release: $VERSION" >&2; exit 2; }
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
STAGING=v0.${VERSION#v1.}

UPSTREAM=$("$GO" mod download -json "k8s.io/kubernetes@$VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f $UPSTREAM ]] || { echo "bump-k8s: no go.mod for k8s.io/kubernetes@$VERSION" >&2; exit 1; }
GO_LINE=$(awk '$1 == "go" { print $2; exit }' "$UPSTREAM")
ETCD=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$UPSTREAM")

{
    printf 'module flyray/k8stools\n\ngo %s\n\nrequire (\n' "$GO_LINE"
    printf '\tgo.etcd.io/etcd/server/v3 %s\n\tk8s.io/kubernetes %s\n)\n\nreplace (\n' "$ETCD" "$VERSION"
    awk '$2 == "=>" && $3 ~ /^\.\/staging\// { staged[$1] = 1 }
         $2 == "v0.0.0" { required[$1] = 1 }
         END { for (m in required) if (m in staged) print m }' "$UPSTREAM" |
        sort | sed "s|.*|\t& => & $STAGING|"
    printf ')\n'
} >go.mod.new
mv go.mod.new go.mod
"$GO" mod tidy
echo "bump-k8s: go.mod now builds k8s.io/kubernetes $VERSION (staging $STAGING), etcd $ETCD"
