# Sourced by hack/setup-helm.sh, hack/setup-promtool.sh and
# hack/setup-golangci-lint.sh: builds a Go command from the Go module proxy,
# never downloading a prebuilt binary, and caches it outside the clone so that
# every checkout on the machine shares one build. A build only happens when
# the binary for the pinned version is missing.

# go_tool NAME OVERRIDE MODULE PACKAGE LDFLAGS_FUNC prints the path of the
# binary NAME, building it first when it is missing:
#   NAME          the tool; hack/tools/NAME is the tools module that pins it
#                 with its go.mod and go.sum
#   OVERRIDE      the environment variable that, when set, names a binary to
#                 use instead (used as it is)
#   MODULE        the module whose version in that go.mod is the tool's
#   PACKAGE       the main package to build
#   LDFLAGS_FUNC  a function called with the version and the tools module's
#                 directory that prints the -ldflags of the build
# The binary goes to ${XDG_CACHE_HOME:-~/.cache}/meshstack-operator/NAME-VERSION/NAME.
go_tool() {
  local name="$1" override="$2" module="$3" pkg="$4" ldflags_func="$5"
  log() { echo "setup-${name}: $*" >&2; }

  if [[ -n "${!override:-}" ]]; then
    if [[ -x "${!override}" ]] || command -v "${!override}" >/dev/null 2>&1; then
      echo "${!override}"
      return 0
    fi
    log "${override}=${!override} is not an executable"
    return 1
  fi

  local tools version
  tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools/${name}" && pwd)"
  version="$(awk -v m="${module}" '$1 == m { print $2 }' "${tools}/go.mod")"
  [[ -n "${version}" ]] || { log "no ${module} requirement in ${tools}/go.mod"; return 1; }

  local cache="${XDG_CACHE_HOME:-${HOME}/.cache}/meshstack-operator/${name}-${version}"
  local bin="${cache}/${name}"
  if [[ -x "${bin}" ]]; then
    echo "${bin}"
    return 0
  fi

  mkdir -p "${cache}"
  log "building ${name} ${version} from the Go module proxy (a few minutes on 2 cores)"
  local ldflags
  ldflags="$("${ldflags_func}" "${version}" "${tools}")"
  (
    cd "${tools}"
    CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly \
      go build -trimpath -ldflags "${ldflags}" -o "${bin}.tmp.$$" "${pkg}"
  )
  mv "${bin}.tmp.$$" "${bin}"
  log "${name} cached in ${bin}"
  echo "${bin}"
}
