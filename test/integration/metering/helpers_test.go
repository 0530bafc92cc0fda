package metering_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/test/framework"
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
	pod := framework.Pod(namespace, name, res)
	Expect(fw.Client.Create(ctx, pod)).To(Succeed())
	DeferCleanup(func() { deletePod(pod) })
	Expect(framework.SetPodStatus(ctx, fw.Client, pod, phase, start)).To(Succeed())
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

// source reads the records a test's meters have written so far.
type source func(g Gomega) []usage.Record

// fileRecords reads a file output.
func fileRecords(path string) source {
	return func(g Gomega) []usage.Record {
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		g.Expect(err).NotTo(HaveOccurred())
		return parseRecords(g, data)
	}
}

// stdoutRecords reads the stdout of one or more meters, in order.
func stdoutRecords(outs ...*syncBuffer) source {
	return func(g Gomega) []usage.Record {
		all := make([]usage.Record, 0, len(outs))
		for _, o := range outs {
			all = append(all, parseRecords(g, []byte(o.String()))...)
		}
		return all
	}
}

// parseRecords reads the complete lines of JSON Lines output; the meter may
// be writing the next window.
func parseRecords(g Gomega, data []byte) []usage.Record {
	records, err := framework.ParseRecords(data)
	g.Expect(err).NotTo(HaveOccurred())
	return records
}

func inNamespace(records []usage.Record, namespace string) []usage.Record {
	return framework.RecordsIn(records, namespace)
}

// waitForRecords waits until the output holds at least n windows of
// namespace that start at or after since, and returns them all.
func waitForRecords(src source, namespace string, since time.Time, n int) []usage.Record {
	GinkgoHelper()
	var records []usage.Record
	Eventually(func(g Gomega) {
		records = inNamespace(src(g), namespace)
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
		return float64(time.Now().UTC().Sub(usage.WindowStart(time.Now(), window))) / float64(window)
	}, timeout, 10*time.Millisecond).Should(And(BeNumerically(">=", from), BeNumerically("<=", to)))
}

// expectContiguous checks that records (of one namespace) cover adjacent,
// aligned windows with none missing and none twice.
func expectContiguous(records []usage.Record) {
	GinkgoHelper()
	Expect(framework.CheckContiguous(records, window)).To(Succeed())
}

// deduplicated drops the records whose id came before, and checks that each
// duplicate is identical to the first: the at-least-once guarantee.
func deduplicated(records []usage.Record) []usage.Record {
	GinkgoHelper()
	unique, _, err := framework.Deduplicate(records)
	Expect(err).NotTo(HaveOccurred())
	return unique
}

// expectUniqueIDs checks that no (namespace, window) appears twice.
func expectUniqueIDs(records []usage.Record) {
	GinkgoHelper()
	seen := map[string]usage.Record{}
	for _, r := range records {
		Expect(seen).NotTo(HaveKey(r.ID), "duplicate record %+v", r)
		seen[r.ID] = r
	}
}

// sumPodSeconds adds up the pod-seconds of records.
func sumPodSeconds(records []usage.Record) float64 {
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

// createClaim creates a PersistentVolumeClaim and, since envtest binds
// nothing, sets its phase and capacity through the status subresource.
func createClaim(namespace, name string, class *string, size string, phase corev1.PersistentVolumeClaimPhase) {
	GinkgoHelper()
	request := size
	if request == "" {
		request = "1Gi"
	}
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(request)}},
		},
	}
	Expect(fw.Client.Create(ctx, claim)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(fw.Client.Delete(ctx, claim))).To(Succeed()) })
	claim.Status.Phase = phase
	if size != "" && phase == corev1.ClaimBound {
		claim.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	}
	Expect(fw.Client.Status().Update(ctx, claim)).To(Succeed())
}

// bindStorageRole grants the metering identity what the chart's
// metering.persistentVolumeClaims.enabled grants, until the spec ends.
func bindStorageRole() {
	GinkgoHelper()
	bindClusterRole("meshstack-operator-metering-storage",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list"}})
}

// bindNamespacesRole grants the metering identity what the chart's
// metering.projectAttribution.enabled grants, until the spec ends.
func bindNamespacesRole() {
	GinkgoHelper()
	bindClusterRole("meshstack-operator-metering-namespaces",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}})
}

func bindClusterRole(name string, rule rbacv1.PolicyRule) {
	GinkgoHelper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: identity.Name, Namespace: identity.Namespace}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
	}
	for _, obj := range []client.Object{role, binding} {
		Expect(fw.Client.Create(ctx, obj)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(fw.Client.Delete(ctx, obj))).To(Succeed()) })
	}
}

// flakyReceiver is a usage receiver that answers 503 to its first requests.
type flakyReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	refuse   int
	body     []byte
	types    []string
	refused  []string
	accepted []string
}

func newFlakyReceiver(refuse int) *flakyReceiver {
	r := &flakyReceiver{refuse: refuse}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		key := req.Header.Get("Idempotency-Key")
		r.types = append(r.types, req.Header.Get("Content-Type"))
		if len(r.refused) < r.refuse {
			r.refused = append(r.refused, key)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.accepted = append(r.accepted, key)
		r.body = append(r.body, body...)
		w.WriteHeader(http.StatusOK)
	}))
	return r
}

func (r *flakyReceiver) records(g Gomega) []usage.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return parseRecords(g, r.body)
}

func (r *flakyReceiver) contentTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.types)
}

func (r *flakyReceiver) refusedKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Compact(slices.Clone(r.refused))
}

func (r *flakyReceiver) acceptedKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// deliveryFailures is meshstack_metering_delivery_failures_total{code}.
func deliveryFailures(code string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "meshstack_metering_delivery_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
