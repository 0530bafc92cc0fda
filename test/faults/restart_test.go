package faults

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
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

	// Just after it starts, kube-apiserver may refuse for a moment (its
	// authorizer still loading RBAC): create retries, as a user would.
	create(g, newProject("restart", "after"))
	addViewer(g, "restart-before", "carol")
	accepted := time.Now()
	took := waitConverged(g, started, 30*time.Second, "restart-after", "restart-before")
	t.Logf("a new and a changed MeshProject (accepted %.1f s after kube-apiserver was back) Ready %.1f s after it was back",
		accepted.Sub(started).Seconds(), took.Seconds())
	waitForWindow(g, 30*time.Second, namespace, started.Add(meteringWindow), meterOutputs)
	meter.stop()
	replicator.stop()

	windows, duplicates := expectEveryWindow(g, namespace, stopped, started, meterOutputs()...)
	t.Logf("metering: %d windows, none missing, %d identical duplicates", windows, duplicates)
	// What happened to the processes: each leader gave up its lease and
	// exited, and its Pod started it again.
	for name, p := range map[string]*pod{"replicator": replicator, "metering": meter} {
		t.Logf("%s exited %d times: %v", name, len(p.exitErrors()), p.exitErrors())
		g.Expect(p.exitErrors()).NotTo(BeEmpty(), "%s kept running", name)
		log, err := os.ReadFile(p.replicas()[0].log)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(log)).To(ContainSubstring("leader election lost"), "%s exited because it could not renew its Lease", name)
	}
	expectNoOrphansOrDuplicates(g)
}
