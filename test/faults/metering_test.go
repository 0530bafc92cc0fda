package faults

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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

// meteringArgs make passes and windows short.
var meteringArgs = []string{"--metering-interval=500ms", "--metering-window=" + meteringWindow.String()}

// resetCheckpoint deletes the metering checkpoint, so that a test's meters
// start afresh: the metering Role lets them write only these names.
func resetCheckpoint(g Gomega) {
	for _, name := range checkpoint.Names(checkpoint.DefaultName, checkpoint.DefaultParts) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: name}}
		g.Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), cm))).To(Succeed())
	}
}

// steadyPod creates a namespace with a pod that has been Running for an
// hour and requests half a core: every window it is metered in counts
// exactly cpuRequest × the window. (envtest has no kubelet: the test sets
// the pod's status.) It returns the namespace.
func steadyPod(g Gomega, namespace string) string {
	ctx := context.Background()
	g.Expect(fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "steady"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
		},
	}
	g.Expect(fw.Client.Create(ctx, pod)).To(Succeed())
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now().Add(-time.Hour)}}
	g.Expect(fw.Client.Status().Update(ctx, pod)).To(Succeed())
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
func waitForWindow(g Gomega, within time.Duration, namespace string, since time.Time, outputs func() []string) {
	g.Eventually(func(g Gomega) {
		records, err := framework.ReadRecordFiles(outputs()...)
		g.Expect(err).NotTo(HaveOccurred())
		var last time.Time
		for _, r := range framework.RecordsIn(records, namespace) {
			if r.WindowStart.After(last) {
				last = r.WindowStart
			}
		}
		g.Expect(last).NotTo(BeTemporally("<", since), "the last window of %s", namespace)
	}, within, 100*time.Millisecond).Should(Succeed())
}

// expectEveryWindow checks the outputs together: records with the same id
// are identical, and the steady pod's namespace has every window from
// before from to after to, each counting the pod exactly. It returns how
// many windows and identical duplicates there were.
func expectEveryWindow(g Gomega, namespace string, from, to time.Time, outputs ...string) (windows, duplicates int) {
	all, err := framework.ReadRecordFiles(outputs...)
	g.Expect(err).NotTo(HaveOccurred())
	unique, duplicates, err := framework.Deduplicate(all)
	g.Expect(err).NotTo(HaveOccurred(), "only identical duplicates")
	records := framework.RecordsIn(unique, namespace)
	g.Expect(framework.CheckContiguous(records, meteringWindow)).To(Succeed(), "no window missing")
	g.Expect(records[0].WindowStart).To(BeTemporally("<", from))
	g.Expect(records[len(records)-1].WindowEnd).To(BeTemporally(">", to))
	seconds := meteringWindow.Seconds()
	for _, r := range records {
		g.Expect(r.PodSeconds).To(BeNumerically("~", seconds, 1e-6), "pod-seconds of window %s", r.WindowStart)
		g.Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", cpuRequest*seconds, 1e-6), "core-seconds of window %s", r.WindowStart)
	}
	return len(records), duplicates
}

// TestMeteringFailover runs two metering replicas with the chart's leader
// election, each writing usage records to its own stdout, with no volume
// shared: SIGKILL of the leader in the middle of a window loses no window —
// the standby resumes from the checkpoint and fills the windows that closed
// while nobody metered — and every record both wrote is identical.
func TestMeteringFailover(t *testing.T) {
	g := NewWithT(t)
	startAfresh(g)
	namespace := steadyPod(g, "failover-metered")
	a := startReplica(t, "metering", "metering-a", meteringArgs...)
	b := startReplica(t, "metering", "metering-b", meteringArgs...)
	first, standby := leaderAndStandby(g, a, b)
	expectReady(g, a, b)
	started := time.Now()
	waitForWindow(g, 30*time.Second, namespace, started, func() []string { return stdouts(first) })

	// In the middle of a window, so that the killed leader has counted part
	// of it.
	waitUntilInWindow(g, 0.4, 0.6)
	t.Log("SIGKILL the leader " + first.name)
	killed := time.Now()
	first.Kill()
	leader(g, takeoverAfterKill, standby)
	tookOver := time.Now()
	t.Logf("%s leads %.1f s after the kill", standby, tookOver.Sub(killed).Seconds())
	waitForWindow(g, 30*time.Second, namespace, tookOver.Add(meteringWindow), func() []string { return stdouts(standby) })
	g.Expect(standby.Stop()).To(Succeed())

	windows, duplicates := expectEveryWindow(g, namespace, killed, tookOver, stdouts(a, b)...)
	t.Logf("%d windows, none missing, %d identical duplicates", windows, duplicates)
}

// waitUntilInWindow waits until the clock is between from and to
// (fractions of a window) into the current metering window.
func waitUntilInWindow(g Gomega, from, to float64) {
	g.Eventually(func() float64 {
		now := time.Now()
		return float64(now.Sub(usage.WindowStart(now, meteringWindow))) / float64(meteringWindow)
	}, 10*time.Second, 10*time.Millisecond).Should(And(BeNumerically(">=", from), BeNumerically("<=", to)))
}
