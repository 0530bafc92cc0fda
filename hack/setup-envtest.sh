#!/usr/bin/env bash
# Provisions the envtest control plane binaries (kube-apiserver, etcd) and
# prints the directory that holds them, for use as KUBEBUILDER_ASSETS.
#
# setup-envtest downloads prebuilt binaries from hosts that are not always
# reachable (air-gapped CI), so we build both from the Go module proxy instead
# and cache them where setup-envtest itself would put them. A rebuild only
# happens when a binary is missing.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.6.16}"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"

log() { echo "setup-envtest: $*" >&2; }

has_binaries() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_binaries "${KUBEBUILDER_ASSETS}"; then
    echo "${KUBEBUILDER_ASSETS}"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS} lacks kube-apiserver or etcd"
  exit 1
fi

data_home="${XDG_DATA_HOME:-${HOME}/.local/share}"
assets="${ENVTEST_ASSETS_DIR:-${data_home}/kubebuilder-envtest/k8s/${K8S_VERSION}-${GOOS}-${GOARCH}}"
mkdir -p "${assets}"

# kubectl is optional for envtest; link the machine's one so the asset dir
# looks like the one setup-envtest produces.
if [[ ! -e "${assets}/kubectl" ]] && command -v kubectl >/dev/null 2>&1; then
  ln -sf "$(command -v kubectl)" "${assets}/kubectl"
fi

if has_binaries "${assets}"; then
  echo "${assets}"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

build_kube_apiserver() {
  log "building kube-apiserver v${K8S_VERSION} from the Go module proxy (several minutes on 2 cores)"
  local mod="${work}/kube-apiserver"
  mkdir -p "${mod}"
  local gomod
  gomod="$(cd "${mod}" && go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  {
    echo "module envtest.local/kube-apiserver"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    # k8s.io/kubernetes replaces each staging module with a local path that
    # does not exist in the module zip; point each at its published version.
    grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/' "${gomod}" \
      | awk -v v="v0.${K8S_VERSION#1.}" '{print "replace " $1 " => " $1 " " v}'
  } >"${mod}/go.mod"
  echo 'package tools' >"${mod}/tools.go"
  (
    cd "${mod}"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v${K8S_VERSION}" >/dev/null
    go build -trimpath -o "${assets}/kube-apiserver.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "${K8S_VERSION}" | cut -d. -f2)" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "${assets}/kube-apiserver.tmp" "${assets}/kube-apiserver"
}

build_etcd() {
  log "building etcd ${ETCD_VERSION} from the Go module proxy"
  local mod="${work}/etcd"
  mkdir -p "${mod}"
  cat >"${mod}/go.mod" <<GOMOD
module envtest.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 ${ETCD_VERSION}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 ${ETCD_VERSION}
)
GOMOD
  (
    cd "${mod}"
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null
    go build -trimpath -o "${assets}/etcd.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3
  )
  mv "${assets}/etcd.tmp" "${assets}/etcd"
}

[[ -x "${assets}/etcd" ]] || build_etcd
[[ -x "${assets}/kube-apiserver" ]] || build_kube_apiserver
has_binaries "${assets}" || { log "build did not produce both binaries"; exit 1; }
log "binaries cached in ${assets}"
echo "${assets}"
