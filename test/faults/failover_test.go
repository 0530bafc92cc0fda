package faults

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// Bounds of a takeover with the chart's (controller-runtime's) lease
// timings, 15 s / 10 s / 2 s: after a crash a standby waits for the lease
// to expire; after a clean exit the lease is released at once.
const (
	takeoverAfterKill = 25 * time.Second
	takeoverAfterTerm = 5 * time.Second
)

// TestReplicatorFailover runs two replicator replicas with the chart's
// leader election. SIGKILL of the leader: the standby takes over once the
// lease expires, and a new and a changed MeshProject are Ready within 25 s
// of the kill. SIGTERM of the (new) leader: it releases the lease on its way
// out, and the next change is Ready within 5 s.
func TestReplicatorFailover(t *testing.T) {
	g := NewWithT(t)
	startAfresh(g)
	a := startReplica(t, "replicator", "replicator-a")
	b := startReplica(t, "replicator", "replicator-b")
	first, standby := leaderAndStandby(g, a, b)
	l := lease(g, "replicator")
	g.Expect(*l.Spec.LeaseDurationSeconds).To(BeEquivalentTo(15), "the chart's default --leader-election-lease-duration reaches the Lease")
	// The standby is Ready, as a Deployment's second Pod is before anything
	// happens to the first: its informers are warm.
	expectReady(g, a, b)
	create(g, newProject("failover", "before"))
	waitConverged(g, time.Now(), 30*time.Second, "failover-before")

	t.Log("SIGKILL the leader " + first.name)
	killed := time.Now()
	first.Kill()
	create(g, newProject("failover", "afterkill"))
	addViewer(g, "failover-before", "carol")
	took := waitConverged(g, killed, takeoverAfterKill, "failover-afterkill", "failover-before")
	g.Expect(leader(g, time.Second, a, b)).To(Equal(standby), "the standby took over")
	t.Logf("SIGKILL: a new and a changed MeshProject Ready %.1f s after the kill (bound %s)", took.Seconds(), takeoverAfterKill)

	// The Deployment replaces the killed Pod: a new standby.
	replacement := startReplica(t, "replicator", "replicator-c")
	expectReady(g, replacement)
	t.Log("SIGTERM the leader " + standby.name)
	terminated := time.Now()
	g.Expect(standby.Stop()).To(Succeed(), "a clean exit on SIGTERM")
	create(g, newProject("failover", "afterterm"))
	took = waitConverged(g, terminated, takeoverAfterTerm, "failover-afterterm")
	g.Expect(leader(g, time.Second, a, b, replacement)).To(Equal(replacement))
	t.Logf("SIGTERM: a new MeshProject Ready %.1f s after the signal (bound %s)", took.Seconds(), takeoverAfterTerm)
	expectNoOrphansOrDuplicates(g)
}
