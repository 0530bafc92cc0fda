package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestMetricsAndProbes runs the binary with both components and checks what
// --metrics-bind-address and --health-probe-bind-address serve.
func TestMetricsAndProbes(t *testing.T) {
	g := newG(t)
	dir := t.TempDir()
	bin := buildOperator(t)
	fw, err := framework.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = fw.Stop() })
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	data, err := fw.AdminKubeconfig()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(kubeconfig, data, 0o600)).To(Succeed())

	metrics, probes := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	p, err := framework.StartProcess(bin, filepath.Join(dir, "operator.log"),
		"--kubeconfig="+kubeconfig, "--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes,
		"--metering-output="+filepath.Join(dir, "usage.jsonl"), "--metering-interval=200ms", "--metering-window=1s",
		"--leader-election-namespace=default")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = p.Stop() })

	get := func(g Gomega, url string) string {
		resp, err := http.Get(url)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", url, body)
		return string(body)
	}
	g.Eventually(func(g Gomega) {
		get(g, "http://"+probes+"/healthz")
		get(g, "http://"+probes+"/readyz")
		body := get(g, "http://"+metrics+"/metrics")
		g.Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="meshproject"`))
		g.Expect(body).To(ContainSubstring("meshstack_metering_last_success_timestamp_seconds "))
		g.Expect(body).To(ContainSubstring("meshstack_metering_pods_seen"))
	}).Should(Succeed(), "log: %s", filepath.Join(dir, "operator.log"))
	g.Expect(p.Stop()).To(Succeed(), "a clean exit on SIGTERM")
}
