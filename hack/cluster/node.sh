#!/usr/bin/env bash
# A real single-node Kubernetes cluster for the cluster tests: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd and a
# kubelet, all inside network, mount (private propagation) and PID
# namespaces of their own, so that the machine's network, sysctls, cgroup
# mounts and iptables stay as they are, and so that stopping the first
# process of the PID namespace stops every process of the cluster, the
# containers and containerd's shims included.
#
#   node.sh up            start it (prints the admin kubeconfig's path)
#   node.sh down          stop everything it started and remove its traces
#   node.sh exec CMD...   run CMD in the cluster's network namespace (the API
#                         server is https://127.0.0.1:443 there, pods are
#                         reachable by IP)
#   node.sh import TAR    import an image archive for the kubelet
#
# Fixed names, addresses and ports (the state directory, cgroup root /meshstack-node,
# 10.0.0.0/24 services, 10.88.0.0/16 pods) allow one such cluster per
# machine. Inside the namespace, the kubernetes Service IP 10.0.0.1 sits on
# the pod bridge and kube-apiserver listens on it at 443, so the operator's
# in-cluster config works without kube-proxy or DNS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${MESHSTACK_NODE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/meshstack-operator/node}"
CGROOT=meshstack-node
SERVICE_IP=10.0.0.1
NODE_IP=10.88.0.1
NODE_NAME=meshstack-node
PAUSE_IMAGE=meshstack.local/pause:1
# Paths the kubelet and containerd use whatever their roots are; removed on
# down when up created them.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /run/netns)

# The namespaces are held by the unshare process whose pid up records.
node_pid() { cat "${STATE}/pid" 2>/dev/null; }

log() { echo "node: $*" >&2; }

in_netns() { nsenter --net="/proc/$(node_pid)/ns/net" -- "$@"; }

# wait_for DESCRIPTION SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what="$1" timeout="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
}

cgroup_dirs() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -f "${h}cgroup.procs" ]] && echo "${h}${CGROOT}"
  done
  return 0
}

write_configs() {
  local s="$1"
  mkdir -p "${s}"/{pki,etcd,kubelet,containerd,cni/net.d,cni/ipam,logs,sysctl,pod-logs,opt}
  (
    cd "${s}/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=meshstack-node-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' \
      "${SERVICE_IP}" "${NODE_IP}" >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 2 -extfile san.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  # Static tokens: the components are trusted parts of a throwaway cluster
  # (system:masters); what the tests check is the operator's own RBAC.
  : >"${s}/pki/tokens.csv"
  local who
  for who in admin kubelet scheduler controller-manager; do
    local token
    token="$(openssl rand -hex 16)"
    # The user names a kubeadm cluster gives the components: the chart's
    # admission policies let exactly system:kube-controller-manager (and
    # kube-system's controller ServiceAccounts) write quota and namespace
    # status, so the controller-manager must be that user.
    local user="${who}"
    case "${who}" in
      controller-manager) user=system:kube-controller-manager ;;
      scheduler) user=system:kube-scheduler ;;
    esac
    echo "${token},${user},${user},\"system:masters\"" >>"${s}/pki/tokens.csv"
    cat >"${s}/${who}.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: meshstack-node
  cluster:
    server: https://127.0.0.1:443
    certificate-authority: ${s}/pki/ca.crt
users:
- name: ${who}
  user:
    token: ${token}
contexts:
- name: meshstack-node
  context: {cluster: meshstack-node, user: ${who}}
current-context: meshstack-node
KC
  done

  cat >"${s}/containerd/config.toml" <<TOML
version = 2
root = "${s}/containerd/root"
state = "${s}/containerd/state"
[grpc]
  address = "${s}/containerd.sock"
[ttrpc]
  address = "${s}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${s}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # The VM lacks CAP_SYS_RESOURCE: runc cannot set negative OOM scores.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$(dirname "$(cni_bridge)")"
    conf_dir = "${s}/cni/net.d"
TOML

  # isGateway false and no masquerade keep ip_forward and iptables alone;
  # the bridge and its addresses are made by up, and the pods' default
  # route points at the bridge's address.
  cat >"${s}/cni/net.d/10-meshstack.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "meshstack",
  "plugins": [{
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": false,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "${NODE_IP}"}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": "${s}/cni/ipam"
    }
  }]
}
JSON

  cat >"${s}/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet 1.37 refuses cgroup v1 unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
# Pod cgroups under a root of their own, not in the hierarchies' roots.
cgroupRoot: /${CGROOT}
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://${s}/containerd.sock
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
failSwapOn: false
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podLogsDir: ${s}/pod-logs
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
serializeImagePulls: false
resolvConf: ""
YAML
}

cni_bridge() {
  local d
  for d in /usr/lib/cni /opt/cni/bin; do
    [[ -x "${d}/bridge" ]] && { echo "${d}/bridge"; return; }
  done
  return 1
}

# run_components runs inside the network namespace and a private mount
# namespace; it starts every component in order and stops them (in reverse)
# when it gets SIGTERM.
run_components() {
  local s="$1" assets="$2"
  # The network: loopback, and the pod bridge with the node's address and
  # the kubernetes Service IP.
  ip link set lo up
  ip link add cni0 type bridge
  ip addr add "${NODE_IP}/16" dev cni0
  ip addr add "${SERVICE_IP}/32" dev cni0
  ip link set cni0 up
  # The kubelet rewrites these host-wide sysctls; give it private copies.
  local f
  for f in vm/overcommit_memory:1 kernel/panic:10 kernel/panic_on_oops:1; do
    local path="${f%%:*}" value="${f##*:}"
    echo "${value}" >"${s}/sysctl/${path//\//_}"
    mount --bind "${s}/sysctl/${path//\//_}" "/proc/sys/${path}"
  done
  local pids=()
  stop() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
    exit 0
  }
  trap stop TERM INT
  "${assets}/etcd" --data-dir "${s}/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --unsafe-no-fsync >"${s}/logs/etcd.log" 2>&1 &
  pids+=($!)
  "${assets}/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 443 --advertise-address "${SERVICE_IP}" \
    --service-cluster-ip-range 10.0.0.0/24 --cert-dir "${s}/pki/apiserver" \
    --tls-cert-file "${s}/pki/apiserver.crt" --tls-private-key-file "${s}/pki/apiserver.key" \
    --client-ca-file "${s}/pki/ca.crt" --token-auth-file "${s}/pki/tokens.csv" \
    --authorization-mode Node,RBAC --allow-privileged=true --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "${s}/pki/sa.pub" --service-account-signing-key-file "${s}/pki/sa.key" \
    >"${s}/logs/kube-apiserver.log" 2>&1 &
  pids+=($!)
  # kube-controller-manager exits when started before /readyz passes.
  wait_for "kube-apiserver /readyz" 60 curl -fsk --cacert "${s}/pki/ca.crt" https://127.0.0.1:443/readyz || stop
  "${assets}/kube-controller-manager" --kubeconfig "${s}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${s}/controller-manager.kubeconfig" --authorization-kubeconfig "${s}/controller-manager.kubeconfig" \
    --root-ca-file "${s}/pki/ca.crt" --service-account-private-key-file "${s}/pki/sa.key" \
    --leader-elect=false --bind-address 127.0.0.1 --service-cluster-ip-range 10.0.0.0/24 \
    >"${s}/logs/kube-controller-manager.log" 2>&1 &
  pids+=($!)
  "${assets}/kube-scheduler" --kubeconfig "${s}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${s}/scheduler.kubeconfig" --authorization-kubeconfig "${s}/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 >"${s}/logs/kube-scheduler.log" 2>&1 &
  pids+=($!)
  containerd --config "${s}/containerd/config.toml" >"${s}/logs/containerd.log" 2>&1 &
  pids+=($!)
  wait_for "containerd" 30 ctr -a "${s}/containerd.sock" version || stop
  ctr -a "${s}/containerd.sock" -n k8s.io images import "${s}/pause.tar" >/dev/null
  "${assets}/kubelet" --config "${s}/kubelet/config.yaml" --kubeconfig "${s}/kubelet.kubeconfig" \
    --hostname-override "${NODE_NAME}" --node-ip "${NODE_IP}" --root-dir "${s}/kubelet/root" \
    --cert-dir "${s}/kubelet/pki" >"${s}/logs/kubelet.log" 2>&1 &
  pids+=($!)
  echo started >"${s}/started"
  while true; do
    wait -n "${pids[@]}" || true
    local p
    for p in "${pids[@]}"; do
      if ! kill -0 "${p}" 2>/dev/null; then
        echo "a component (pid ${p}) exited; see ${s}/logs" >"${s}/failed"
        stop
      fi
    done
  done
}

up() {
  if [[ -n "$(node_pid)" ]] && kill -0 "$(node_pid)" 2>/dev/null; then
    log "a cluster is already up (pid $(node_pid)); run '$0 down' first"
    exit 1
  fi
  [[ "$(id -u)" == 0 ]] || { log "needs root (namespaces, cgroups, containerd)"; exit 1; }
  "${here}/setup-packages.sh"
  local assets
  assets="$("${here}/setup-node-binaries.sh")"
  local started=${SECONDS}
  rm -rf "${STATE}"
  mkdir -p "${STATE}"
  # What exists before, so down removes only what this cluster created.
  local p
  for p in "${HOST_PATHS[@]}"; do
    [[ -e "${p}" ]] || echo "${p}" >>"${STATE}/created-paths"
  done
  write_configs "${STATE}"
  # The pause image: a static Go program, imported from a local archive.
  (cd "${here}/../.." && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${STATE}/pause" ./hack/cluster/pause &&
    go run ./hack/image -binary "${STATE}/pause" -tag "${PAUSE_IMAGE}" -o "${STATE}/pause.tar" >/dev/null)

  local d
  for d in $(cgroup_dirs); do mkdir -p "${d}"; done
  # setsid: a process group of its own, so that down can signal it whole.
  setsid unshare --net --mount --propagation private --pid --fork --mount-proc -- \
    "${BASH}" "$0" _run "${STATE}" "${assets}" </dev/null >"${STATE}/logs/node.log" 2>&1 &
  echo $! >"${STATE}/pid"
  local kc="${STATE}/admin.kubeconfig"
  node_ready() {
    [[ ! -e "${STATE}/failed" ]] || { cat "${STATE}/failed" >&2; exit 1; }
    in_netns kubectl --kubeconfig "${kc}" get node "${NODE_NAME}" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
  }
  if ! wait_for "node ${NODE_NAME} Ready" 180 node_ready; then
    tail -n 20 "${STATE}"/logs/*.log >&2 || true
    exit 1
  fi
  log "node Ready in $((SECONDS - started))s; kubeconfig ${kc}"
  echo "${kc}"
}

down() {
  local started=${SECONDS}
  local pid
  pid="$(node_pid)"
  if [[ -n "${pid}" ]]; then
    # The components stop in reverse order; when the first process of the
    # PID namespace exits, the kernel kills what is left in it (shims and
    # containers, which containerd starts in sessions of their own).
    kill -TERM -- "-${pid}" 2>/dev/null || true
    wait_for "the components to stop" 60 bash -c "! kill -0 ${pid} 2>/dev/null" || kill -KILL -- "-${pid}" 2>/dev/null || true
  fi
  # Anything still in the cluster's cgroups (a cluster from a killed test).
  local d
  for d in $(cgroup_dirs); do
    [[ -d "${d}" ]] || continue
    find "${d}" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  for d in $(cgroup_dirs); do
    [[ -d "${d}" ]] || continue
    # Leaves first; a cgroup whose last process is just dying may need a retry.
    wait_for "${d} to be removed" 30 bash -c "find '${d}' -depth -type d -exec rmdir {} + 2>/dev/null; [[ ! -d '${d}' ]]" || true
  done
  # Pod network namespaces' files containerd left behind (their mounts
  # lived only in the private mount namespace).
  find /run/netns -maxdepth 1 -name 'cni-*' -type f -empty -delete 2>/dev/null || true
  if [[ -f "${STATE}/created-paths" ]]; then
    local p
    while read -r p; do
      [[ "${p}" == /run/netns ]] && { rmdir "${p}" 2>/dev/null || true; continue; }
      rm -rf "${p}"
    done <"${STATE}/created-paths"
  fi
  rm -rf "${STATE}"
  log "stopped in $((SECONDS - started))s"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec) shift; in_netns "$@" ;;
  import) ctr -a "${STATE}/containerd.sock" -n k8s.io images import "$2" >/dev/null ;;
  _run) run_components "$2" "$3" ;;
  *) echo "usage: $0 up|down|exec CMD...|import ARCHIVE" >&2; exit 2 ;;
esac
