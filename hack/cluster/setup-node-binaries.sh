#!/usr/bin/env bash
# Provisions the node components a real single-node cluster needs besides
# kube-apiserver and etcd (kubelet, kube-scheduler, kube-controller-manager)
# and prints the directory that holds all five.
#
# They are built from the Go module proxy exactly like hack/setup-envtest.sh
# builds kube-apiserver (same module trick, CGO_ENABLED=0, -trimpath, same
# version ldflags) and cached next to it, so the Go build cache that built
# kube-apiserver is shared: together they add ~430 CPU-seconds instead of
# ~1,500 when built on their own. A build happens only when a binary is
# missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"

log() { echo "setup-node-binaries: $*" >&2; }

# kube-apiserver and etcd first: the node components go into the same
# directory (and kube-apiserver warms the build cache they share).
assets="$("${here}/../setup-envtest.sh")"

cmds=(kubelet kube-scheduler kube-controller-manager)
missing=()
for c in "${cmds[@]}"; do
  [[ -x "${assets}/${c}" ]] || missing+=("${c}")
done
if ((${#missing[@]} == 0)); then
  echo "${assets}"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

log "building ${missing[*]} v${K8S_VERSION} from the Go module proxy (~7 min on 2 cores with a warm build cache)"
mod="${work}/node"
mkdir -p "${mod}"
gomod="$(cd "${mod}" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
{
  echo "module envtest.local/node"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
  echo
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  echo
  # As in setup-envtest.sh: k8s.io/kubernetes replaces each staging module
  # with a path missing from the module zip; use the published versions.
  grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/' "${gomod}" \
    | awk -v v="v0.${K8S_VERSION#1.}" '{print "replace " $1 " => " $1 " " v}'
} >"${mod}/go.mod"
echo 'package tools' >"${mod}/tools.go"
# Without these ldflags the binaries report v0.0.0-master (the kubelet would
# register a node of that version).
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "${K8S_VERSION}" | cut -d. -f2)"
(
  cd "${mod}"
  for c in "${missing[@]}"; do
    go get "k8s.io/kubernetes/cmd/${c}@v${K8S_VERSION}" >/dev/null
  done
  for c in "${missing[@]}"; do
    log "building ${c}"
    go build -trimpath -o "${assets}/${c}.tmp" -ldflags "${ldflags}" "k8s.io/kubernetes/cmd/${c}"
    mv "${assets}/${c}.tmp" "${assets}/${c}"
  done
)
log "binaries cached in ${assets}"
echo "${assets}"
