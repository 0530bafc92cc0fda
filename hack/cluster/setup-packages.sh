#!/usr/bin/env bash
# Installs the Debian packages the single-node cluster needs when any of
# their commands is missing: containerd and runc (the container runtime),
# the CNI plugins (bridge, host-local, loopback), iproute2 (ip), util-linux
# (unshare, nsenter, mount), openssl (the cluster's certificates) and curl
# (readiness polls). iptables is not needed: the node never touches it. CI starts from a fresh machine as root, so the project
# installs what it uses itself instead of documenting a manual step.
set -euo pipefail

need=()
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[[ -x /usr/lib/cni/bridge || -x /opt/cni/bin/bridge ]] || need+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
{ command -v unshare && command -v nsenter; } >/dev/null 2>&1 || need+=(util-linux)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "setup-packages: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "setup-packages: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
