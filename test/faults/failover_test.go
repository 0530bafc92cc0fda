package faults

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Bounds of a takeover with the chart's (controller-runtime's) lease
// timings, 15 s / 10 s / 2 s: after a crash a standby waits for the lease
// to expire; after a clean exit the lease is released at once.
const (
	takeoverAfterKill = 25 * time.Second
	takeoverAfterTerm = 5 * time.Second
)

// The spec runs two replicator replicas with the chart's
// leader election. SIGKILL of the leader: the standby takes over once the
// lease expires, and a new and a changed MeshProject are Ready within 25 s
// of the kill. SIGTERM of the (new) leader: it releases the lease on its way
// out, and the next change is Ready within 5 s.
var _ = Describe("Replicator failover with the chart's leader election", Serial, func() {
	It("hands over to the standby within 25 s of a SIGKILL and within 5 s of a SIGTERM, leaving nothing orphaned or doubled", func() {
		startAfresh()
		a := startReplica("replicator", "replicator-a")
		b := startReplica("replicator", "replicator-b")
		first, standby := leaderAndStandby(a, b)
		l := lease(Default, "replicator")
		Expect(*l.Spec.LeaseDurationSeconds).To(BeEquivalentTo(15), "the chart's default --leader-election-lease-duration reaches the Lease")
		// The standby is Ready, as a Deployment's second Pod is before anything
		// happens to the first: its informers are warm.
		expectReady(a, b)
		create(newProject("failover", "before"))
		waitConverged(time.Now(), framework.Timeout, "failover-before")

		By("SIGKILL the leader " + first.name)
		killed := time.Now()
		first.Kill()
		create(newProject("failover", "afterkill"))
		addViewer("failover-before", "carol")
		took := waitConverged(killed, takeoverAfterKill, "failover-afterkill", "failover-before")
		Expect(leader(time.Second, a, b)).To(Equal(standby), "the standby took over")
		framework.Logf("SIGKILL: a new and a changed MeshProject Ready %.1f s after the kill (bound %s)", took.Seconds(), takeoverAfterKill)

		// The Deployment replaces the killed Pod: a new standby.
		replacement := startReplica("replicator", "replicator-c")
		expectReady(replacement)
		By("SIGTERM the leader " + standby.name)
		terminated := time.Now()
		Expect(standby.Stop()).To(Succeed(), "a clean exit on SIGTERM")
		create(newProject("failover", "afterterm"))
		took = waitConverged(terminated, takeoverAfterTerm, "failover-afterterm")
		Expect(leader(time.Second, a, b, replacement)).To(Equal(replacement))
		framework.Logf("SIGTERM: a new MeshProject Ready %.1f s after the signal (bound %s)", took.Seconds(), takeoverAfterTerm)
		expectNoOrphansOrDuplicates()
	})
})
