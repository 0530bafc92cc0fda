package faults

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// apiServerDown is how long kube-apiserver is stopped: longer than the
// chart's --leader-election-renew-deadline (10 s) and lease (15 s).
const apiServerDown = 15 * time.Second

// convergeAfterOutage is what the spec proves: changes made right after
// the outage converge within 30 s of kube-apiserver being back.
const convergeAfterOutage = 30 * time.Second

// The spec stops kube-apiserver for 15 s and starts it again on
// the same address, while one replica of each component runs as the
// chart's Pods do, restarted whenever it exits. Each leader cannot renew
// its Lease for the renew deadline, gives up and exits; its Pod restarts
// it. Afterwards a new and a changed MeshProject converge within 30 s, and
// metering has every window, before, during and after the outage, each
// counting the steady pod exactly.
var _ = Describe("A kube-apiserver outage of 15 s", Serial, func() {
	It("restarts both leaders, then converges within 30 s and meters every window exactly once", func() {
		startAfresh()
		namespace := steadyPod("restart-metered")
		replicator := runPod("replicator", "replicator")
		meter := runPod("metering", "metering", meteringArgs...)
		leader(framework.SlowTimeout, replicator.current())
		leader(framework.SlowTimeout, meter.current())
		create(newProject("restart", "before"))
		waitConverged(time.Now(), framework.Timeout, "restart-before")
		meterOutputs := func() []string { return stdouts(meter.replicas()...) }
		waitForWindow(namespace, time.Now(), meterOutputs)

		stopped, started, err := fw.RestartAPIServer(apiServerDown)
		Expect(err).NotTo(HaveOccurred())
		framework.Logf("kube-apiserver stopped, healthy again %.1f s later", started.Sub(stopped).Seconds())

		// Just after it starts, kube-apiserver may refuse for a moment (its
		// authorizer still loading RBAC): create retries, as a user would.
		create(newProject("restart", "after"))
		addViewer("restart-before", "carol")
		accepted := time.Now()
		took := waitConverged(started, convergeAfterOutage, "restart-after", "restart-before")
		framework.Logf("a new and a changed MeshProject (accepted %.1f s after kube-apiserver was back) Ready %.1f s after it was back",
			accepted.Sub(started).Seconds(), took.Seconds())
		waitForWindow(namespace, started.Add(meteringWindow), meterOutputs)
		meter.stop()
		replicator.stop()

		windows, duplicates := expectEveryWindow(namespace, stopped, started, meterOutputs()...)
		framework.Logf("metering: %d windows, none missing, %d identical duplicates", windows, duplicates)
		// What happened to the processes: each leader gave up its lease and
		// exited, and its Pod started it again.
		for name, p := range map[string]*pod{"replicator": replicator, "metering": meter} {
			framework.Logf("%s exited %d times: %v", name, len(p.exitErrors()), p.exitErrors())
			Expect(p.exitErrors()).NotTo(BeEmpty(), "%s kept running", name)
			log, err := os.ReadFile(p.replicas()[0].log)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(log)).To(ContainSubstring("leader election lost"), "%s exited because it could not renew its Lease", name)
		}
		expectNoOrphansOrDuplicates()
	})
})
