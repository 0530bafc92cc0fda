package metering_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	mi = float64(1 << 20)
	pi = float64(1 << 50)
	// eps absorbs float rounding; everything exact must match to it.
	eps = 1e-6
)

var windowSeconds = window.Seconds()

var _ = Describe("Metering", func() {
	var output string
	BeforeEach(func() { output = filepath.Join(GinkgoT().TempDir(), "usage.jsonl") })

	It("writes exact usage records per namespace and window, under the pods get/list identity alone", func() {
		c := newCustomer()
		longAgo := time.Now().Add(-time.Hour)
		steady, bare, huge, idle, gone, late, plain := c+"-steady", c+"-bare", c+"-huge", c+"-idle", c+"-gone", c+"-late", "plain"+c
		createPod(steady, "web", resources("250m", "64Mi", "500m", "128Mi"), corev1.PodRunning, longAgo)
		createPod(bare, "bare", corev1.ResourceRequirements{}, corev1.PodRunning, longAgo)
		createPod(huge, "huge", resources("1k", "1Pi", "", ""), corev1.PodRunning, longAgo)
		createPod(idle, "pending", resources("1", "1Gi", "", ""), corev1.PodPending, time.Time{})
		createPod(idle, "succeeded", resources("1", "1Gi", "", ""), corev1.PodSucceeded, longAgo)
		createPod(idle, "failed", resources("1", "1Gi", "", ""), corev1.PodFailed, longAgo)
		goner := createPod(gone, "job", resources("100m", "", "", ""), corev1.PodRunning, longAgo)
		createPod(plain, "bare", corev1.ResourceRequirements{}, corev1.PodRunning, longAgo)

		m := startMeter(meteringOptions(output))
		started := time.Now()

		// A pod that starts while the meter runs counts from its startTime.
		lateStart := nextWholeSecond(0)
		createPod(late, "web", resources("1", "", "", ""), corev1.PodRunning, lateStart)

		// All pods of a namespace vanish in the middle of a window.
		waitForRecords(output, gone, started, 1)
		waitUntilInWindow(0.3, 0.6)
		goneBefore, goneAfter := aroundNow(func() { deletePod(goner) })

		// One more window shows that the vanished namespace gets no records.
		lastWindow := metering.WindowStart(goneAfter, window).Add(window)
		waitForRecords(output, steady, lastWindow, 1)
		waitForRecords(output, late, lastWindow, 1)
		m.stop()
		all := readRecords(Default, output)
		expectUniqueIDs(all)

		By("counting a pod that ran through every window exactly, windows aligned and contiguous")
		records := inNamespace(all, steady)
		expectContiguous(records)
		for _, r := range records {
			Expect(r.CustomerIdentifier).To(Equal(c))
			Expect(r.ProjectIdentifier).To(Equal("steady"))
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 0.25*windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds).To(BeNumerically("~", 64*mi*windowSeconds, eps))
			Expect(r.CPULimitCoreSeconds).To(BeNumerically("~", 0.5*windowSeconds, eps))
			Expect(r.MemoryLimitByteSeconds).To(BeNumerically("~", 128*mi*windowSeconds, eps))
			Expect(r.Samples).To(BeNumerically(">", 0))
		}

		By("counting pod-seconds alone for a pod without requests or limits")
		for _, r := range inNamespace(all, bare) {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect([]float64{r.CPURequestCoreSeconds, r.MemoryRequestByteSeconds, r.CPULimitCoreSeconds, r.MemoryLimitByteSeconds}).To(HaveEach(BeZero()))
		}

		By("handling huge quantities without overflow")
		records = inNamespace(all, huge)
		Expect(records).NotTo(BeEmpty())
		for _, r := range records {
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 1000*windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds / (pi * windowSeconds)).To(BeNumerically("~", 1, 1e-12))
		}

		By("ignoring pods that are Pending, Succeeded or Failed")
		Expect(inNamespace(all, idle)).To(BeEmpty())

		By("leaving out the identifiers of a namespace not named <customer>-<project>")
		records = inNamespace(all, plain)
		Expect(records).NotTo(BeEmpty())
		Expect(records[0].CustomerIdentifier).To(BeEmpty())
		Expect(records[0].ProjectIdentifier).To(BeEmpty())

		By("counting a pod from its startTime exactly")
		records = inNamespace(all, late)
		expectContiguous(records)
		Expect(records[0].WindowStart).To(Equal(metering.WindowStart(lateStart, window)))
		Expect(records[0].PodSeconds).To(BeNumerically("~", records[0].WindowEnd.Sub(lateStart).Seconds(), eps))
		for _, r := range records[1:] {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
		}

		By("counting a vanished pod until the last pass that saw it, and no later windows")
		records = inNamespace(all, gone)
		expectContiguous(records)
		last := records[len(records)-1]
		// The last pass that saw the pod may have run in the window before
		// the one it was deleted in, when it was deleted just after a boundary.
		Expect(last.WindowStart).To(BeTemporally("<=", metering.WindowStart(goneBefore, window)))
		Expect(last.WindowStart).To(BeTemporally(">=", metering.WindowStart(goneBefore.Add(-(passInterval+passJitter)), window)))
		for _, r := range records[:len(records)-1] {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
		}
		Expect(last.PodSeconds).To(BeNumerically("<=", goneAfter.Sub(last.WindowStart).Seconds()+eps))
		Expect(last.PodSeconds).To(BeNumerically(">=", goneBefore.Sub(last.WindowStart).Seconds()-(passInterval+passJitter).Seconds()))
		Expect(last.CPURequestCoreSeconds).To(BeNumerically("~", 0.1*last.PodSeconds, eps))

		By("reading only: no writes, no informers (nothing forbidden in the log)")
		Expect(m.Writes()).To(BeZero())
		Expect(logs.String()).NotTo(ContainSubstring("forbidden"))

		By("exporting metrics")
		Expect(metricValue("meshstack_metering_records_emitted_total")).To(BeNumerically(">=", len(all)))
		Expect(metricValue("meshstack_metering_pods_seen")).To(BeNumerically(">=", 8))
		Expect(metricValue("meshstack_metering_last_success_timestamp_seconds")).To(BeNumerically(">", float64(started.Unix())))
		Expect(metricValue("meshstack_metering_list_errors_total")).To(BeZero())
		Expect(metricValue("meshstack_metering_pass_duration_seconds")).To(BeNumerically(">", 0))
	})

	It("resumes after a change of leader in the middle of a window with no duplicate and no missing window", func() {
		c := newCustomer()
		steady, short := c+"-steady", c+"-short"
		createPod(steady, "web", resources("500m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		opts := meteringOptions(output)
		opts.LeaderElect = true
		opts.LeaderElectionNS = operatorNamespace
		opts.LeaderElectionID = "metering-" + c

		first := startMeter(opts)
		started := time.Now()
		waitForRecords(output, steady, started, 1)

		// A pod that runs and ends in the window that is open when the
		// leader changes: only the first leader ever sees it.
		waitUntilInWindow(0.05, 0.3)
		shortStart := nextWholeSecond(0)
		pod := createPod(short, "job", resources("2", "", "", ""), corev1.PodRunning, shortStart)
		Eventually(func() (string, error) {
			data, err := os.ReadFile(output + ".state")
			return string(data), err
		}, timeout, poll).Should(ContainSubstring(short), "the state file never held the pod's namespace")
		shortEndBefore, shortEndAfter := aroundNow(func() { deletePod(pod) })

		// A standby replica takes over when the leader stops.
		second := startMeter(opts)
		_, stopped := aroundNow(first.stop)
		// The window open at the change and the next one, by the new leader.
		lastWindow := metering.WindowStart(stopped, window).Add(window)
		waitForRecords(output, steady, lastWindow, 1)
		second.stop()

		all := readRecords(Default, output)
		expectUniqueIDs(all)
		records := inNamespace(all, steady)
		expectContiguous(records)
		Expect(records[len(records)-1].WindowStart).NotTo(BeTemporally("<", lastWindow))
		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps), "window %s", r.WindowStart)
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 0.5*windowSeconds, eps))
		}
		shortSeconds := sumPodSeconds(inNamespace(all, short))
		Expect(shortSeconds).To(BeNumerically("<=", shortEndAfter.Sub(shortStart).Seconds()+eps))
		Expect(shortSeconds).To(BeNumerically(">=", shortEndBefore.Sub(shortStart).Seconds()-(passInterval+passJitter).Seconds()))
		Expect(logs.String()).To(ContainSubstring("resuming from the last pass of the previous process"))
	})

	It("repairs a garbled last line and keeps every earlier record", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))

		// An earlier run wrote the window before the current one, then
		// crashed in the middle of a line.
		previous := metering.WindowStart(time.Now(), window).Add(-window)
		earlier := metering.Record{
			ID: metering.RecordID("earlier-run", previous, previous.Add(window)), Namespace: "earlier-run",
			CustomerIdentifier: "earlier", ProjectIdentifier: "run",
			WindowStart: previous, WindowEnd: previous.Add(window), WindowRecords: 1,
			Usage: metering.Usage{PodSeconds: 1, Samples: 1},
		}
		line, err := json.Marshal(earlier)
		Expect(err).NotTo(HaveOccurred())
		garbled := `{"id":"0123456789abcdef","namespace":"` + c
		Expect(os.WriteFile(output, append(append(line, '\n'), garbled...), 0o600)).To(Succeed())

		startMeter(meteringOptions(output))
		waitForRecords(output, steady, previous.Add(window), 2)

		data, err := os.ReadFile(output)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.HasPrefix(string(data), string(line)+"\n")).To(BeTrue(), "the earlier record was not kept:\n%s", data)
		Expect(string(data)).NotTo(ContainSubstring(garbled))
		all := readRecords(Default, output)
		expectUniqueIDs(all)
		expectContiguous(inNamespace(all, steady))
		Expect(inNamespace(all, steady)[0].WindowStart).To(Equal(previous.Add(window)), "resumed after the earlier window")
		Expect(logs.String()).To(ContainSubstring("torn write"))
		Expect(logs.String()).To(ContainSubstring(`"garbledLastLine": true`))
	})

	It("has an identity that can get and list pods and nothing else the seed does not grant", func() {
		By("generating exactly the seed's meshfed-metering rules as the ClusterRole")
		objs, err := framework.ReadObjects(filepath.Join(framework.RepoRoot(), "config", "rbac", "metering", "role.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var clusterRole rbacv1.ClusterRole
		for _, o := range objs {
			if o.GetObjectKind().GroupVersionKind().Kind == "ClusterRole" {
				Expect(fw.Client.Get(ctx, client.ObjectKey{Name: o.GetName()}, &clusterRole)).To(Succeed())
			}
		}
		Expect(clusterRole.Rules).To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}))

		By("asking the API server what the identity may do")
		allowed := func(verb, group, resource, namespace string) bool {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   identity.UserName(),
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: verb, Group: group, Resource: resource, Namespace: namespace,
				},
			}}
			Expect(fw.Client.Create(ctx, sar)).To(Succeed())
			return sar.Status.Allowed
		}
		Expect(allowed("list", "", "pods", "")).To(BeTrue())
		Expect(allowed("get", "", "pods", "default")).To(BeTrue())
		Expect(allowed("watch", "", "pods", "")).To(BeFalse())
		Expect(allowed("get", "", "namespaces", "")).To(BeFalse())
		Expect(allowed("list", "", "namespaces", "")).To(BeFalse())
		Expect(allowed("list", "meshcloud.io", "meshprojects", "")).To(BeFalse())
		Expect(allowed("update", "coordination.k8s.io", "leases", operatorNamespace)).To(BeTrue())
		Expect(allowed("update", "coordination.k8s.io", "leases", "default")).To(BeFalse())

		By("being refused a watch on pods and a list of namespaces")
		cs, err := kubernetes.NewForConfig(identity.Config)
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "watch pods: %v", err)
		_, err = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "list namespaces: %v", err)
		_, err = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
		Expect(err).NotTo(HaveOccurred())
	})
})

// metricValue is the value of a counter or gauge, or the sample count of a
// histogram, in the manager's registry.
func metricValue(name string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	Fail("no metric " + name)
	return math.NaN()
}
