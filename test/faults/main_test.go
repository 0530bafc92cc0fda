// Package faults runs the operator as the chart deploys it — the built
// binary, one process per replica of each component, under the chart's
// ServiceAccount tokens and the args of the chart's Deployments — against
// one envtest control plane, and takes things away from it: the leader
// (SIGKILL and SIGTERM), the replicator in the middle of converging 500
// projects, and kube-apiserver for 15 seconds.
package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	releaseNamespace = "meshcloud"
	// The chart's ServiceAccounts.
	replicatorAccount = "meshfed-service"
	meteringAccount   = "meshfed-metering"
)

var (
	fw *framework.Framework
	// binary is the operator, built as `make build` builds it.
	binary string
	// tmp holds the binary, kubeconfigs, the audit log and every process's
	// output.
	tmp string
	// kubeconfigs maps a ServiceAccount to a kubeconfig with its token alone.
	kubeconfigs = map[string]string{}
	// auditLog is kube-apiserver's audit log of the replicator's writes.
	auditLog string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if tmp, err = os.MkdirTemp("", "meshstack-faults-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	binary = filepath.Join(tmp, "meshstack-operator")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "./cmd")
	build.Dir = framework.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the operator: %w\n%s", err, out)
	}

	auditLog = filepath.Join(tmp, "audit.log")
	policy := filepath.Join(tmp, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return 0, err
	}
	certs := filepath.Join(tmp, "apiserver")
	if err := os.Mkdir(certs, 0o700); err != nil {
		return 0, err
	}
	if fw, err = framework.Start(
		framework.WithoutCRDs(), // helm install brings them
		framework.WithRestartableAPIServer(certs),
		framework.WithAPIServerFlag("audit-policy-file", policy),
		framework.WithAPIServerFlag("audit-log-path", auditLog),
	); err != nil {
		return 0, err
	}
	defer func() { _ = fw.Stop() }()

	ctx := context.Background()
	admin, err := fw.AdminKubeconfig()
	if err != nil {
		return 0, err
	}
	adminKubeconfig := filepath.Join(tmp, "admin.kubeconfig")
	if err := os.WriteFile(adminKubeconfig, admin, 0o600); err != nil {
		return 0, err
	}
	// envtest runs no scheduler or kubelet: the chart's Deployments are
	// created but never run. The tests run their args as processes.
	// The tests delete the metering checkpoint as cluster admin between
	// tests (resetCheckpoint), which the checkpoint policy refuses; it is
	// tested in test/e2e/checkpoint_policy_test.go.
	if _, err := framework.Helm(ctx, tmp, "install", "meshstack-operator", framework.ChartDir,
		"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
		"--set", "admissionPolicies.meteringCheckpoint.enabled=false"); err != nil {
		return 0, err
	}
	// envtest runs no aggregation controller: fill admin, edit and view.
	if err := fw.FillAggregatedClusterRoles(ctx); err != nil {
		return 0, err
	}
	if err := readDeploymentArgs(ctx); err != nil {
		return 0, err
	}
	for _, account := range []string{replicatorAccount, meteringAccount} {
		data, err := fw.TokenKubeconfig(ctx, framework.ServiceAccount{Namespace: releaseNamespace, Name: account}, 3600)
		if err != nil {
			return 0, err
		}
		kubeconfigs[account] = filepath.Join(tmp, account+".kubeconfig")
		if err := os.WriteFile(kubeconfigs[account], data, 0o600); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

// auditPolicy records the metadata of every write request of the
// replicator's ServiceAccount, and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["system:serviceaccount:` + releaseNamespace + `:` + replicatorAccount + `"]
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`
