package metering_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering"
)

var customerSeq atomic.Int32

// newCustomer is a customer identifier unique to the run, so that specs
// never share namespaces.
func newCustomer() string {
	return fmt.Sprintf("c%d%d", customerSeq.Add(1), time.Now().UnixNano()%100000)
}

// resources builds requests and limits; an empty string leaves one out.
func resources(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	list := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: list(cpuReq, memReq), Limits: list(cpuLim, memLim)}
}

// createPod creates a pod and, since envtest has no kubelet, sets its phase
// and startTime through the status subresource. The pod is deleted when the
// spec ends.
func createPod(namespace, name string, res corev1.ResourceRequirements, phase corev1.PodPhase, start time.Time) *corev1.Pod {
	GinkgoHelper()
	err := fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: res}},
		},
	}
	Expect(fw.Client.Create(ctx, pod)).To(Succeed())
	DeferCleanup(func() { deletePod(pod) })
	pod.Status.Phase = phase
	if !start.IsZero() {
		pod.Status.StartTime = &metav1.Time{Time: start}
	}
	Expect(fw.Client.Status().Update(ctx, pod)).To(Succeed())
	return pod
}

// deletePod deletes a pod at once (it has no node, so no kubelet has to
// confirm).
func deletePod(pod *corev1.Pod) {
	GinkgoHelper()
	err := fw.Client.Delete(ctx, pod, client.GracePeriodSeconds(0))
	if !apierrors.IsNotFound(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// readRecords reads the complete lines of a JSON Lines output; the meter may
// be writing the next window.
func readRecords(g Gomega, path string) []metering.Record {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	g.Expect(err).NotTo(HaveOccurred())
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var records []metering.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r metering.Record
		g.Expect(json.Unmarshal(sc.Bytes(), &r)).To(Succeed(), "line %q", sc.Text())
		records = append(records, r)
	}
	return records
}

func inNamespace(records []metering.Record, namespace string) []metering.Record {
	var out []metering.Record
	for _, r := range records {
		if r.Namespace == namespace {
			out = append(out, r)
		}
	}
	return out
}

// waitForRecords waits until the output holds at least n windows of
// namespace that start at or after since, and returns them all.
func waitForRecords(path, namespace string, since time.Time, n int) []metering.Record {
	GinkgoHelper()
	var records []metering.Record
	Eventually(func(g Gomega) {
		records = inNamespace(readRecords(g, path), namespace)
		count := 0
		for _, r := range records {
			if !r.WindowStart.Before(since) {
				count++
			}
		}
		g.Expect(count).To(BeNumerically(">=", n), "windows of %s since %s", namespace, since)
	}, timeout, poll).Should(Succeed())
	return records
}

// waitUntilInWindow waits until the clock is between from and to (fractions
// of a window) into the current window.
func waitUntilInWindow(from, to float64) {
	GinkgoHelper()
	Eventually(func() float64 {
		return float64(time.Now().UTC().Sub(metering.WindowStart(time.Now(), window))) / float64(window)
	}, timeout, 10*time.Millisecond).Should(And(BeNumerically(">=", from), BeNumerically("<=", to)))
}

// expectContiguous checks that records (of one namespace) cover adjacent,
// aligned windows with none missing and none twice.
func expectContiguous(records []metering.Record) {
	GinkgoHelper()
	Expect(records).NotTo(BeEmpty())
	for i, r := range records {
		Expect(r.WindowEnd.Sub(r.WindowStart)).To(Equal(window), "window length of %+v", r)
		Expect(r.WindowStart.UnixNano()%int64(window)).To(BeZero(), "window not aligned: %+v", r)
		Expect(r.ID).To(Equal(metering.RecordID(r.Namespace, r.WindowStart, r.WindowEnd)))
		if i > 0 {
			Expect(r.WindowStart).To(Equal(records[i-1].WindowEnd), "gap or overlap before window %d of %s", i, r.Namespace)
		}
	}
}

// expectUniqueIDs checks that no (namespace, window) appears twice.
func expectUniqueIDs(records []metering.Record) {
	GinkgoHelper()
	seen := map[string]metering.Record{}
	for _, r := range records {
		Expect(seen).NotTo(HaveKey(r.ID), "duplicate record %+v", r)
		seen[r.ID] = r
	}
}

// sumPodSeconds adds up the pod-seconds of records.
func sumPodSeconds(records []metering.Record) float64 {
	var sum float64
	for _, r := range records {
		sum += r.PodSeconds
	}
	return sum
}

// aroundNow runs f and returns the times just before and after it.
func aroundNow(f func()) (before, after time.Time) {
	before = time.Now()
	f()
	return before, time.Now()
}

// nextWholeSecond is the first whole second at least d from now: a
// startTime (which the API keeps in whole seconds) that no pass has passed
// yet.
func nextWholeSecond(d time.Duration) time.Time {
	return time.Now().Add(d).Truncate(time.Second).Add(time.Second)
}
