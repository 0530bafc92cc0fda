package metering_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/internal/operator"
)

var _ = Describe("Exact lifetimes and extended resources", func() {
	// Passes 3 seconds apart, and jobs of 1 to 4 seconds: most of them
	// start and end between two passes.
	const interval, window = 3 * time.Second, 6 * time.Second

	lifetimeOptions := func(out *syncBuffer) operator.Options {
		opts := stdoutOptions(out)
		opts.MeteringInterval, opts.MeteringWindow = interval, window
		return opts
	}

	It("bills jobs shorter than the interval, GPUs and ephemeral storage for their exact lifetimes, once across a restart", func() {
		c := newCustomer()
		jobs, gpus, steady := c+"-jobs", c+"-gpus", c+"-steady"
		// Keeps windows closing after the jobs are done.
		createPod(steady, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		cpu := resources("500m", "", "", "")
		gpu := resources("1", "", "", "")
		for _, list := range []corev1.ResourceList{gpu.Requests, gpu.Limits} {
			list["nvidia.com/gpu"] = resource.MustParse("2")
			list[corev1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
		}
		firstOut, secondOut := &syncBuffer{}, &syncBuffer{}
		both := stdoutRecords(firstOut, secondOut)
		first := startMeter(lifetimeOptions(firstOut))

		// Every pod is created Pending, then started and ended at whole
		// seconds (the API keeps times in seconds), as a kubelet would.
		type job struct {
			namespace, name string
			res             corev1.ResourceRequirements
			start, end      int // seconds after s
			phase           corev1.PodPhase
		}
		schedule := []job{
			{jobs, "one-second", cpu, 0, 1, corev1.PodSucceeded},
			{jobs, "two-seconds", cpu, 1, 3, corev1.PodFailed},
			{jobs, "four-seconds", cpu, 0, 4, corev1.PodSucceeded},
			{jobs, "late", cpu, 5, 7, corev1.PodSucceeded},
			{gpus, "train", gpu, 1, 3, corev1.PodSucceeded},
			{gpus, "infer", gpu, 2, 8, corev1.PodSucceeded},
		}
		pods := map[string]*corev1.Pod{}
		for _, j := range schedule {
			pods[j.name] = createPod(j.namespace, j.name, j.res, corev1.PodPending, time.Time{})
		}
		s := nextWholeSecond(time.Second)
		wantSeconds := map[string]float64{}
		for _, j := range schedule {
			wantSeconds[j.namespace] += float64(j.end - j.start)
		}
		for at := 0; at <= 8; at++ {
			// Written a little before the second they name: a pass that
			// sees a start or an end still ahead of it bills up to itself
			// and leaves the rest to the next pass, so nothing depends on
			// when the passes run.
			waitUntil(s.Add(time.Duration(at)*time.Second - 150*time.Millisecond))
			for _, j := range schedule {
				pod := pods[j.name]
				switch at {
				case j.start:
					pod.Status.Phase = corev1.PodRunning
					pod.Status.StartTime = &metav1.Time{Time: s.Add(time.Duration(at) * time.Second)}
				case j.end:
					pod.Status.Phase = j.phase
					pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
						Name: "app", Image: "registry.k8s.io/pause:3.10", ImageID: "pause",
						State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
							FinishedAt: metav1.Time{Time: s.Add(time.Duration(at) * time.Second)}, StartedAt: *pod.Status.StartTime,
						}},
					}}
				default:
					continue
				}
				Expect(fw.Client.Status().Update(ctx, pod)).To(Succeed())
			}
		}

		By("restarting the meter while the ended pods are still listed")
		Eventually(func(g Gomega) {
			g.Expect(loadCheckpoint(g).LastPass).To(BeTemporally(">", s.Add(8*time.Second)))
		}, timeout, poll).Should(Succeed())
		first.stop()
		second := startMeter(lifetimeOptions(secondOut))
		lastEnd := usage.WindowStart(s.Add(8*time.Second), window).Add(window)
		waitForRecords(both, steady, lastEnd.Add(window), 1)
		second.stop()

		all := deduplicated(both(Default))
		for _, ns := range []string{jobs, gpus} {
			got := sumPodSeconds(inNamespace(all, ns))
			Expect(got).To(BeNumerically("<=", wantSeconds[ns]+eps), "%s billed more than its pods ran", ns)
			Expect(got).To(BeNumerically(">=", 0.98*wantSeconds[ns]), "%s billed less than 98%% of what its pods ran", ns)
		}
		var gpuSeconds, gpuLimitSeconds, ephemeral, cpuSeconds float64
		for _, r := range inNamespace(all, gpus) {
			gpuSeconds += r.ExtendedResourceRequestSeconds["nvidia.com/gpu"]
			gpuLimitSeconds += r.ExtendedResourceLimitSeconds["nvidia.com/gpu"]
			ephemeral += r.EphemeralStorageRequestByteSeconds
			cpuSeconds += r.CPURequestCoreSeconds
		}
		// train 2 s and infer 6 s, with 2 GPUs, 1Gi and 1 core each.
		Expect(gpuSeconds).To(BeNumerically("~", 16, 16*0.02))
		Expect(gpuLimitSeconds).To(BeNumerically("~", gpuSeconds, eps))
		Expect(ephemeral).To(BeNumerically("~", 8*gib, 8*gib*0.02))
		Expect(cpuSeconds).To(BeNumerically("~", 8, 8*0.02))
		for _, r := range inNamespace(all, jobs) {
			Expect(r.ExtendedResourceRequestSeconds).To(BeEmpty(), "no pod of %s asks for an extended resource", jobs)
		}
	})
})

// waitUntil waits until the clock reaches t.
func waitUntil(t time.Time) {
	GinkgoHelper()
	Eventually(time.Now, timeout, 5*time.Millisecond).Should(BeTemporally(">=", t))
}
