#!/usr/bin/env bash
# Provisions helm and prints the path of the binary.
#
# helm is built from the Go module proxy (the tools module in hack/tools/helm
# pins helm.sh/helm/v3), never downloaded as a prebuilt binary, and cached
# outside the clone so that every checkout on the machine shares one build. A
# build only happens when the binary for the pinned version is missing.
#
# HELM, when set, names a helm binary to use instead.
set -euo pipefail

log() { echo "setup-helm: $*" >&2; }

if [[ -n "${HELM:-}" ]]; then
  if [[ -x "${HELM}" ]] || command -v "${HELM}" >/dev/null 2>&1; then
    echo "${HELM}"
    exit 0
  fi
  log "HELM=${HELM} is not an executable"
  exit 1
fi

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/tools/helm" && pwd)"
version="$(awk '$1 == "helm.sh/helm/v3" { print $2 }' "${tools}/go.mod")"
[[ -n "${version}" ]] || { log "no helm.sh/helm/v3 requirement in ${tools}/go.mod"; exit 1; }

cache="${XDG_CACHE_HOME:-${HOME}/.cache}/meshstack-operator/helm-${version}"
bin="${cache}/helm"
if [[ -x "${bin}" ]]; then
  echo "${bin}"
  exit 0
fi

mkdir -p "${cache}"
log "building helm ${version} from the Go module proxy (a few minutes on 2 cores)"
# The Kubernetes version helm assumes for `helm template` and `helm lint`
# without a cluster: the client-go helm links against, as helm's Makefile does.
k8s="$(awk '$1 == "k8s.io/client-go" { print $2 }' "${tools}/go.mod")"
k8s_minor="$(echo "${k8s}" | cut -d. -f2)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${version}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done
(
  cd "${tools}"
  CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly \
    go build -trimpath -ldflags "${ldflags}" -o "${bin}.tmp.$$" helm.sh/helm/v3/cmd/helm
)
mv "${bin}.tmp.$$" "${bin}"
log "helm cached in ${bin}"
echo "${bin}"
