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

# shellcheck source=lib/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tool.sh"

# helm's version, and the Kubernetes version helm assumes for `helm template`
# and `helm lint` without a cluster: the client-go helm links against, as
# helm's Makefile does.
helm_ldflags() {
  local version="$1" tools="$2" k8s k8s_minor ldflags pkg
  k8s="$(awk '$1 == "k8s.io/client-go" { print $2 }' "${tools}/go.mod")"
  k8s_minor="$(echo "${k8s}" | cut -d. -f2)"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${version}"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
  done
  echo "${ldflags}"
}

go_tool helm HELM helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm helm_ldflags
