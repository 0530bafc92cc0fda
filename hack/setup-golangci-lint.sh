#!/usr/bin/env bash
# Provisions golangci-lint and prints the path of the binary.
#
# Like helm (hack/setup-helm.sh), golangci-lint is built from the Go module
# proxy (the tools module in hack/tools/golangci-lint pins
# github.com/golangci/golangci-lint/v2), never downloaded as a prebuilt
# binary, and cached outside the clone so that every checkout on the machine
# shares one build. A build only happens when the binary for the pinned
# version is missing.
#
# GOLANGCI_LINT, when set, names a golangci-lint binary to use instead.
set -euo pipefail

# shellcheck source=lib/go-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go-tool.sh"

# The variables golangci-lint's release build (.goreleaser.yml) sets, so that
# `golangci-lint version` reports the pinned release rather than "(devel)":
# the version without its "v", and the release's date as the module proxy
# records it. The proxy does not serve the commit, so main.commit keeps its
# default. main.date must be set, or golangci-lint ignores main.version and
# reads the version of the main module, which here is the tools module.
golangci_lint_ldflags() {
  local version="$1" date
  date="$(cd "$2" && GOWORK=off go mod download -json "github.com/golangci/golangci-lint/v2" |
    sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p' | xargs sed -n 's/.*"Time":"\([^"]*\)".*/\1/p')"
  echo "-s -w -X main.version=${version#v} -X main.date=${date:-unknown}"
}

go_tool golangci-lint GOLANGCI_LINT github.com/golangci/golangci-lint/v2 github.com/golangci/golangci-lint/v2/cmd/golangci-lint golangci_lint_ldflags
