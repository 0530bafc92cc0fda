// Package e2e runs the product the way a user does: the built binary, its
// flags and the README's commands.
package e2e

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// operatorBinary is the operator, built once for the suite as `make build`
// builds it.
var operatorBinary string

// TestE2E runs the end-to-end specs. Each starts a control plane of its own:
// they install the chart with different values and into API servers with
// different flags. Their Eventually default is framework.SlowTimeout, not
// Timeout: most of what they wait for is a freshly started binary or a
// freshly configured kube-apiserver (OIDC keys, admission policies) coming up.
func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(framework.SlowTimeout)
	SetDefaultEventuallyPollingInterval(framework.PollInterval)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	operatorBinary = filepath.Join(GinkgoT().TempDir(), "meshstack-operator")
	Expect(framework.BuildOperator(ctx, operatorBinary)).To(Succeed())
})

// startControlPlane starts a control plane that is stopped when the spec
// (or, in BeforeAll, its container) ends, and writes a cluster-admin
// kubeconfig for kubectl and helm into dir.
func startControlPlane(dir string) (*framework.Framework, string) {
	GinkgoHelper()
	fw, err := framework.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = fw.Stop() })
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	data, err := fw.AdminKubeconfig()
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(kubeconfig, data, 0o600)).To(Succeed())
	return fw, kubeconfig
}
