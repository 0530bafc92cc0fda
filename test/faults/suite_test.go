// Package faults runs the operator as the chart deploys it — the built
// binary, one process per replica of each component, under the chart's
// ServiceAccount tokens and the args of the chart's Deployments — against
// one envtest control plane, and takes things away from it: the leader
// (SIGKILL and SIGTERM), the replicator in the middle of converging 500
// projects, and kube-apiserver for 15 seconds.
package faults

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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

// TestFaults runs the fault specs against one control plane with the chart
// installed (BeforeSuite). The specs share it and take turns: each starts
// afresh (startAfresh) rather than on a control plane of its own, which
// would cost each one a kube-apiserver, a helm install and ServiceAccounts.
func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(framework.Timeout)
	SetDefaultEventuallyPollingInterval(framework.PollInterval)
	RunSpecs(t, "Faults suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	tmp, err = os.MkdirTemp("", "meshstack-faults-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, tmp)
	binary = filepath.Join(tmp, "meshstack-operator")
	Expect(framework.BuildOperator(ctx, binary)).To(Succeed())

	auditLog = filepath.Join(tmp, "audit.log")
	policy := filepath.Join(tmp, "audit-policy.yaml")
	Expect(os.WriteFile(policy, []byte(auditPolicy), 0o600)).To(Succeed())
	certs := filepath.Join(tmp, "apiserver")
	Expect(os.Mkdir(certs, 0o700)).To(Succeed())
	fw, err = framework.Start(
		framework.WithoutCRDs(), // helm install brings them
		framework.WithRestartableAPIServer(certs),
		framework.WithAPIServerFlag("audit-policy-file", policy),
		framework.WithAPIServerFlag("audit-log-path", auditLog),
	)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = fw.Stop() })

	admin, err := fw.AdminKubeconfig()
	Expect(err).NotTo(HaveOccurred())
	adminKubeconfig := filepath.Join(tmp, "admin.kubeconfig")
	Expect(os.WriteFile(adminKubeconfig, admin, 0o600)).To(Succeed())
	// envtest runs no scheduler or kubelet: the chart's Deployments are
	// created but never run. The specs run their args as processes.
	// The specs delete the metering checkpoint as cluster admin between
	// specs (resetCheckpoint), which the checkpoint policy refuses; it is
	// tested in test/e2e/checkpoint_policy_test.go.
	_, err = framework.Helm(ctx, tmp, "install", "meshstack-operator", framework.ChartDir,
		"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
		"--set", "admissionPolicies.meteringCheckpoint.enabled=false")
	Expect(err).NotTo(HaveOccurred())
	// envtest runs no aggregation controller: fill admin, edit and view.
	Expect(fw.FillAggregatedClusterRoles(ctx)).To(Succeed())
	Expect(readDeploymentArgs(ctx)).To(Succeed())
	for _, account := range []string{replicatorAccount, meteringAccount} {
		data, err := fw.TokenKubeconfig(ctx, framework.ServiceAccount{Namespace: releaseNamespace, Name: account}, 3600)
		Expect(err).NotTo(HaveOccurred())
		kubeconfigs[account] = filepath.Join(tmp, account+".kubeconfig")
		Expect(os.WriteFile(kubeconfigs[account], data, 0o600)).To(Succeed())
	}
})

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
