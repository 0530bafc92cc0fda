#!/usr/bin/env bash
# Runs the cluster tests (test/cluster) against a real single-node cluster:
# builds the operator image (make image), starts the cluster, imports the
# image, runs the tests inside the cluster's network namespace (where the
# API server and the pods are reachable) and stops the cluster again, also
# when the tests fail or the run is interrupted.
#
# Extra arguments go to the test binary, e.g. -test.run TestX -test.v.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

archive=bin/meshstack-operator-image.tar
tag=meshstack-operator:dev
go run ./hack/image -tag "${tag}" -o "${archive}" >/dev/null
helm="$(hack/setup-helm.sh)"
# Built outside the namespace, which has no route to the Go module proxy.
go test -c -o bin/cluster.test ./test/cluster

trap 'hack/cluster/node.sh down' EXIT
trap 'exit 130' INT TERM
start=${SECONDS}
kubeconfig="$(hack/cluster/node.sh up)"
hack/cluster/node.sh import "${archive}"
echo "cluster up in $((SECONDS - start))s" >&2
# Run from the package directory, as go test does.
hack/cluster/node.sh exec env -C test/cluster \
  MESHSTACK_CLUSTER_REQUIRED=1 MESHSTACK_CLUSTER_KUBECONFIG="${kubeconfig}" MESHSTACK_CLUSTER_IMAGE="${tag}" HELM="${helm}" \
  ../../bin/cluster.test -test.timeout 20m -test.count 1 "$@"
