package metering_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

var _ = Describe("Metering under hostile input", func() {
	It("keeps delivering every namespace's windows when a pod's memory limit is 1e400", func() {
		c := newCustomer()
		steady, evil := c+"-steady", c+"-evil"
		createPod(steady, "web", resources("250m", "64Mi", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		// Valid for the API server, +Inf as a float64; the request defaults
		// to the limit.
		createPod(evil, "bomb", resources("1", "", "", "1e400"), corev1.PodRunning, time.Now().Add(-time.Hour))

		out := &syncBuffer{}
		startMeter(stdoutOptions(out))
		started := time.Now()
		records := waitForRecords(stdoutRecords(out), steady, usage.WindowStart(started, window).Add(window), 2)
		evilRecords := waitForRecords(stdoutRecords(out), evil, usage.WindowStart(started, window).Add(window), 2)

		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds).To(BeNumerically("~", 64*mi*windowSeconds, eps))
		}
		for _, r := range evilRecords {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds).To(BeZero())
			Expect(r.MemoryLimitByteSeconds).To(BeZero())
		}
		Expect(invalidQuantities(evil, "limits.memory")).To(BeNumerically(">", 0))
		Expect(invalidQuantities(evil, "requests.memory")).To(BeNumerically(">", 0))
		Expect(metricValue("meshstack_metering_checkpoint_save_failing")).To(BeZero())
		Eventually(func(g Gomega) {
			g.Expect(loadCheckpoint(g).Open).NotTo(BeEmpty())
		}, timeout, poll).Should(Succeed(), "the checkpoint is saved and loads")
		Expect(logs.String()).To(ContainSubstring("Pod " + evil + "/bomb: requests.memory 10e399"))
	})

	It("recreates a checkpoint deleted under the running leader, losing and doubling nothing", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("500m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		firstOut, secondOut := &syncBuffer{}, &syncBuffer{}
		both := stdoutRecords(firstOut, secondOut)
		first := startMeter(stdoutOptions(firstOut))
		waitForRecords(both, steady, time.Now(), 1)

		By("deleting every part of the checkpoint in the middle of a window")
		waitUntilInWindow(0.3, 0.6)
		deleted := time.Now()
		for _, name := range checkpoint.Names(checkpoint.DefaultName, checkpoint.DefaultParts) {
			err := fw.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name}})
			Expect(client.IgnoreNotFound(err)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			cp := loadCheckpoint(g)
			g.Expect(cp.LastPass).To(BeTemporally(">", deleted))
			g.Expect(cp.Open).To(ContainElement(HaveField("Start", usage.WindowStart(deleted, window))))
		}, timeout, poll).Should(Succeed(), "the leader recreates the checkpoint with the open window")
		Consistently(first.Exited(), 3*passInterval).ShouldNot(BeClosed(), "the leader keeps metering")
		Expect(logs.String()).To(ContainSubstring("was deleted while this process metered"))

		By("restarting from the recreated checkpoint")
		first.stop()
		second := startMeter(stdoutOptions(secondOut))
		lastWindow := usage.WindowStart(time.Now(), window).Add(window)
		waitForRecords(both, steady, lastWindow, 1)
		second.stop()

		records := inNamespace(deduplicated(both(Default)), steady)
		expectContiguous(records)
		Expect(records[0].WindowStart).To(BeTemporally("<", deleted))
		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps), "window %s", r.WindowStart)
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 0.5*windowSeconds, eps))
		}
	})
})

// invalidQuantities is meshstack_metering_invalid_quantities_total of a
// namespace and resource.
func invalidQuantities(namespace, resource string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "meshstack_metering_invalid_quantities_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == namespace && labels["resource"] == resource {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
