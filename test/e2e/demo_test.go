package e2e

import (
	"os/exec"
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The spec runs what `make demo` runs and checks that it shows the chart
// installed, the sample projects converged with the access their
// RoleBindings give, and a usage record of the demo pod.
var _ = Describe("make demo", func() {
	It("shows the chart installed, the samples converged with the access their RoleBindings give, and a usage record", func(ctx SpecContext) {
		framework.RequireTool(GinkgoTB(), "kubectl", "the demo drives the cluster with it")
		cmd := exec.CommandContext(ctx, "go", "run", "./hack/demo", "-once", "-operator", operatorBinary)
		cmd.Dir = framework.RepoRoot()
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "demo failed:\n%s", out)
		output := string(out)
		var missing []string
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
			regexp.MustCompile(`\{"id":"[0-9a-f]{32}","namespace":"acme-webshop","customerIdentifier":"acme","projectIdentifier":"webshop",` +
				`.*"podSeconds":(0\.[0-9]*[1-9]|[1-9])`),
			// The metering checkpoint in the API server.
			regexp.MustCompile(`kubectl get configmap -n meshcloud meshstack-metering`),
			regexp.MustCompile(`meshstack-metering\s+6\s+\S+`),
			regexp.MustCompile(`lastPass: 20\d\d-`),
			regexp.MustCompile(`delivered: 20\d\d-`),
		} {
			if !want.MatchString(output) {
				missing = append(missing, want.String())
			}
		}
		Expect(missing).To(BeEmpty(), "what the demo output lacks:\n%s", output)
		Expect(output).NotTo(ContainSubstring("Press Ctrl-C"), "-once must not wait for Ctrl-C")
	})
})
