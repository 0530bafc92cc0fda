package faults

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Short passes and windows keep metering tests to seconds; the chart's are
// 1m and 1h.
const (
	meteringWindow = 2 * time.Second
	// cpuRequest is what the steady pods request.
	cpuRequest = 0.5
)

// recordsPoll is how often a wait reads every record file again: they
// grow to megabytes (the checkpoint spec's records list 250 storage classes
// each), and reading them 20 times a second would take CPU from the
// processes the spec measures.
const recordsPoll = 2 * framework.PollInterval

// meteringArgs make passes and windows short.
var meteringArgs = []string{"--metering-interval=500ms", "--metering-window=" + meteringWindow.String()}

// resetCheckpoint deletes the metering checkpoint, so that a test's meters
// start afresh: the metering Role lets them write only these names.
func resetCheckpoint() {
	GinkgoHelper()
	for _, name := range checkpoint.Names(checkpoint.DefaultName, checkpoint.DefaultParts) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: name}}
		Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), cm))).To(Succeed())
	}
}

// steadyPod creates a namespace with a pod that has been Running for an
// hour and requests half a core: every window it is metered in counts
// exactly cpuRequest × the window. (envtest has no kubelet: the test sets
// the pod's status.) It returns the namespace.
func steadyPod(namespace string) string {
	GinkgoHelper()
	ctx := context.Background()
	Expect(fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	Expect(createRunningPod(ctx, namespace, "steady", cpuRequest)).To(Succeed())
	return namespace
}

// stdouts are the usage record outputs of the replicas.
func stdouts(replicas ...*replica) []string {
	paths := make([]string, len(replicas))
	for i, r := range replicas {
		paths[i] = r.stdout
	}
	return paths
}

// waitForWindow waits until the outputs hold a record of the namespace for
// a window that starts at or after since.
func waitForWindow(namespace string, since time.Time, outputs func() []string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		records, err := framework.ReadRecordFiles(outputs()...)
		g.Expect(err).NotTo(HaveOccurred())
		var last time.Time
		for _, r := range framework.RecordsIn(records, namespace) {
			if r.WindowStart.After(last) {
				last = r.WindowStart
			}
		}
		g.Expect(last).NotTo(BeTemporally("<", since), "the last window of %s", namespace)
	}).WithPolling(recordsPoll).Should(Succeed())
}

// expectEveryWindow checks the outputs together: records with the same id
// are identical, and the steady pod's namespace has every window from
// before from to after to, each counting the pod exactly. It returns how
// many windows and identical duplicates there were.
func expectEveryWindow(namespace string, from, to time.Time, outputs ...string) (windows, duplicates int) {
	GinkgoHelper()
	all, err := framework.ReadRecordFiles(outputs...)
	Expect(err).NotTo(HaveOccurred())
	unique, duplicates, err := framework.Deduplicate(all)
	Expect(err).NotTo(HaveOccurred(), "only identical duplicates")
	records := framework.RecordsIn(unique, namespace)
	Expect(framework.CheckContiguous(records, meteringWindow)).To(Succeed(), "no window missing")
	Expect(records[0].WindowStart).To(BeTemporally("<", from))
	Expect(records[len(records)-1].WindowEnd).To(BeTemporally(">", to))
	seconds := meteringWindow.Seconds()
	for _, r := range records {
		Expect(r.PodSeconds).To(BeNumerically("~", seconds, 1e-6), "pod-seconds of window %s", r.WindowStart)
		Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", cpuRequest*seconds, 1e-6), "core-seconds of window %s", r.WindowStart)
	}
	return len(records), duplicates
}

// The spec runs two metering replicas with the chart's leader
// election, each writing usage records to its own stdout, with no volume
// shared: SIGKILL of the leader in the middle of a window loses no window —
// the standby resumes from the checkpoint and fills the windows that closed
// while nobody metered — and every record both wrote is identical.
var _ = Describe("Metering failover with the chart's leader election", Serial, func() {
	It("loses no window when the leader is SIGKILLed mid-window, and both replicas write identical records", func() {
		startAfresh()
		namespace := steadyPod("failover-metered")
		a := startReplica("metering", "metering-a", meteringArgs...)
		b := startReplica("metering", "metering-b", meteringArgs...)
		first, standby := leaderAndStandby(a, b)
		expectReady(a, b)
		started := time.Now()
		waitForWindow(namespace, started, func() []string { return stdouts(first) })

		// In the middle of a window, so that the killed leader has counted part
		// of it.
		waitUntilInWindow(0.4, 0.6)
		By("SIGKILL the leader " + first.name)
		killed := time.Now()
		first.Kill()
		leader(takeoverAfterKill, standby)
		tookOver := time.Now()
		framework.Logf("%s leads %.1f s after the kill", standby, tookOver.Sub(killed).Seconds())
		waitForWindow(namespace, tookOver.Add(meteringWindow), func() []string { return stdouts(standby) })
		Expect(standby.Stop()).To(Succeed())

		windows, duplicates := expectEveryWindow(namespace, killed, tookOver, stdouts(a, b)...)
		framework.Logf("%d windows, none missing, %d identical duplicates", windows, duplicates)
	})
})

// waitUntilInWindow waits until the clock is between from and to
// (fractions of a window) into the current metering window.
func waitUntilInWindow(from, to float64) {
	GinkgoHelper()
	Eventually(func() float64 {
		now := time.Now()
		return float64(now.Sub(usage.WindowStart(now, meteringWindow))) / float64(meteringWindow)
	}).WithPolling(10 * time.Millisecond).Should(And(BeNumerically(">=", from), BeNumerically("<=", to)))
}
