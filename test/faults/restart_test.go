package faults

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// apiServerDown is how long kube-apiserver is stopped: longer than the
// chart's --leader-election-renew-deadline (10 s) and lease (15 s).
const apiServerDown = 15 * time.Second

// TestAPIServerRestart stops kube-apiserver for 15 s and starts it again on
// the same address, while one replica of each component runs as the
// chart's Pods do, restarted whenever it exits. Each leader cannot renew
// its Lease for the renew deadline, gives up and exits; its Pod restarts
// it. Afterwards a new and a changed MeshProject converge within 30 s, and
// metering has every window, before, during and after the outage, each
// counting the steady pod exactly.
func TestAPIServerRestart(t *testing.T) {
	g := NewWithT(t)
	startAfresh(g)
	namespace := steadyPod(g, "restart-metered")
	replicator := runPod(t, "replicator", "replicator")
	meter := runPod(t, "metering", "metering", meteringArgs...)
	leader(g, time.Minute, replicator.current())
	leader(g, time.Minute, meter.current())
	create(g, newProject("restart", "before"))
	waitConverged(g, time.Now(), 30*time.Second, "restart-before")
	meterOutputs := func() []string { return stdouts(meter.replicas()...) }
	waitForWindow(g, 30*time.Second, namespace, time.Now(), meterOutputs)

	stopped, started, err := fw.RestartAPIServer(apiServerDown)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("kube-apiserver stopped, healthy again %.1f s later", started.Sub(stopped).Seconds())

	// For up to 30 s after kube-apiserver starts, the chart's landing-zone
	// admission policy may refuse MeshProject writes (see writable).
	accepted := writable(g)
	t.Logf("MeshProject writes accepted %.1f s after kube-apiserver was back", accepted.Sub(started).Seconds())
	create(g, newProject("restart", "after"))
	addViewer(g, "restart-before", "carol")
	took := waitConverged(g, accepted, 30*time.Second, "restart-after", "restart-before")
	t.Logf("a new and a changed MeshProject Ready %.1f s after they were accepted, %.1f s after kube-apiserver was back",
		took.Seconds(), time.Since(started).Seconds())
	waitForWindow(g, 30*time.Second, namespace, started.Add(meteringWindow), meterOutputs)
	meter.stop()
	replicator.stop()

	windows, duplicates := expectEveryWindow(g, namespace, stopped, started, meterOutputs()...)
	t.Logf("metering: %d windows, none missing, %d identical duplicates", windows, duplicates)
	for name, p := range map[string]*pod{"replicator": replicator, "metering": meter} {
		t.Logf("%s exited %d times: %v", name, len(p.exitErrors()), p.exitErrors())
	}
	expectNoOrphansOrDuplicates(g)
}

// writable waits until kube-apiserver admits a MeshProject (a dry run), and
// returns when. After it starts, kube-apiserver compiles the chart's
// landing-zone policy, whose paramKind is the MeshLandingZone CRD, with a
// RESTMapper it refreshes from discovery every 30 s; compiled before the
// CRD is discovered, the policy is misconfigured until the next refresh, and
// with failurePolicy Fail it refuses every MeshProject create and update
// meanwhile ("failed to find resource referenced by paramKind").
func writable(g Gomega) time.Time {
	g.Eventually(func() error {
		return fw.Client.Create(context.Background(), newProject("restart", "probe"), client.DryRunAll)
	}, time.Minute, 100*time.Millisecond).Should(Succeed())
	return time.Now()
}
