#!/usr/bin/env bash
# Provisions promtool (Prometheus' rule checker and rule unit tester) and
# prints the path of the binary.
#
# Like helm (hack/setup-helm.sh), promtool is built from the Go module proxy
# (the tools module in hack/tools/promtool pins
# github.com/prometheus/prometheus), never downloaded as a prebuilt binary,
# and cached outside the clone so that every checkout on the machine shares
# one build. A build only happens when the binary for the pinned version is
# missing.
#
# PROMTOOL, when set, names a promtool binary to use instead.
set -euo pipefail

# shellcheck source=lib/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tool.sh"

# The module version v0.3XX.Y is Prometheus 3.XX.Y, which `promtool --version`
# reports.
promtool_ldflags() {
  local release
  release="$(echo "$1" | sed -E 's/^v0\.([0-9])([0-9]+)\.([0-9]+).*$/\1.\2.\3/')"
  echo "-s -w -X github.com/prometheus/common/version.Version=${release}"
}

go_tool promtool PROMTOOL github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/promtool promtool_ldflags
