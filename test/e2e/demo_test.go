// Package e2e runs the product the way a user does: the built binary, its
// flags and the README's commands.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// buildOperator builds the operator binary the way `make build` does.
func buildOperator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshstack-operator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd")
	cmd.Dir = framework.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the operator: %v\n%s", err, out)
	}
	return bin
}

// startControlPlane starts a control plane that t stops when it ends, and
// writes a cluster-admin kubeconfig for kubectl and helm into dir.
func startControlPlane(t *testing.T, dir string, options ...func(*envtest.Environment)) (*framework.Framework, string) {
	t.Helper()
	fw, err := framework.Start(options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fw.Stop() })
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	data, err := fw.AdminKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return fw, kubeconfig
}

// TestDemo runs what `make demo` runs and checks that it shows the chart
// installed, the sample projects converged with the access their
// RoleBindings give, and a usage record of the demo pod.
func TestDemo(t *testing.T) {
	framework.RequireTool(t, "kubectl", "the demo drives the cluster with it")
	bin := buildOperator(t)
	cmd := exec.Command("go", "run", "./hack/demo", "-once", "-operator", bin)
	cmd.Dir = framework.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	output := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`acme-webshop\s+acme\s+webshop\s+acme-webshop\s+True\s+Reconciled`),
		regexp.MustCompile(`acme-analytics\s+acme\s+analytics\s+acme-analytics\s+standard\s+True\s+Reconciled`),
		// The landing zone's quota (with the project's override) and limit range.
		regexp.MustCompile(`standard\s+1\s+`),
		regexp.MustCompile(`acme-analytics\s+meshproject-quota\s+map\[limits.memory:16Gi pods:50 requests.cpu:8\]`),
		regexp.MustCompile(`acme-analytics\s+meshproject-limits\s+Container\s+map\[cpu:500m memory:512Mi\]\s+map\[cpu:100m memory:128Mi\]`),
		regexp.MustCompile(`meshproject-default-deny-ingress`),
		regexp.MustCompile(`acme-webshop\s+meshproject-admin\s+admin\s+mesh:alice`),
		regexp.MustCompile(`acme-webshop\s+meshproject-edit\s+edit\s+acme-webshop-developers`),
		regexp.MustCompile(`create deployments in acme-webshop\s+yes`),
		regexp.MustCompile(`create deployments in acme-analytics\s+no`),
		regexp.MustCompile(`export KUBECONFIG=\S+`),
		// The chart is installed and both components run under its accounts.
		regexp.MustCompile(`STATUS: deployed`),
		regexp.MustCompile(`--components=replicator, authenticated only by a token of ServiceAccount meshcloud/meshfed-service`),
		regexp.MustCompile(`--components=metering, authenticated only by a token of ServiceAccount meshcloud/meshfed-metering`),
		// A usage record of the demo pod.
		regexp.MustCompile(`\{"id":"[0-9a-f]{32}","namespace":"acme-webshop","customerIdentifier":"acme","projectIdentifier":"webshop",.*"podSeconds":(0\.[0-9]*[1-9]|[1-9])`),
		// The metering checkpoint in the API server.
		regexp.MustCompile(`kubectl get configmap -n meshcloud meshstack-metering`),
		regexp.MustCompile(`meshstack-metering\s+6\s+\S+`),
		regexp.MustCompile(`lastPass: 20\d\d-`),
		regexp.MustCompile(`delivered: 20\d\d-`),
	} {
		if !want.MatchString(output) {
			t.Errorf("demo output lacks %q:\n%s", want, output)
		}
	}
	if strings.Contains(output, "Press Ctrl-C") {
		t.Errorf("-once must not wait for Ctrl-C")
	}
}
