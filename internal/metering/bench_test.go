package metering

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
)

// pagedPods serves total pods in pages, the way the API server does (sorted
// by namespace), from one preallocated page: it costs no allocations and
// never holds more than a page, so what the benchmark measures is the
// meter's own work.
type pagedPods struct {
	total      int
	namespaces []string
	page       []corev1.Pod
	// onPage, when set, runs before a page is served.
	onPage func()
}

func newPagedPods(total, namespaces, pageSize int) *pagedPods {
	p := &pagedPods{total: total, page: make([]corev1.Pod, pageSize)}
	for i := range namespaces {
		p.namespaces = append(p.namespaces, fmt.Sprintf("cust%d-proj%d", i/10, i%10))
	}
	always := corev1.ContainerRestartPolicyAlways
	for i := range p.page {
		pod := newPod("", "pod-"+strconv.Itoa(i), startedAt(t0.Add(-time.Hour)))
		pod.Labels = map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b4"}
		pod.Spec.InitContainers = []corev1.Container{
			{Name: "init", Resources: requirements("1", "256Mi", "1", "256Mi")},
			{Name: "proxy", RestartPolicy: &always, Resources: requirements("100m", "64Mi", "200m", "128Mi")},
		}
		pod.Spec.Containers = []corev1.Container{
			{Name: "app", Resources: requirements("500m", "1Gi", "1", "2Gi")},
			{Name: "worker", Resources: requirements("250m", "512Mi", "", "1Gi")},
		}
		// A kubelet with in-place resize (GA since 1.35) reports what it
		// allocated and actuated for every container.
		for _, c := range append(pod.Spec.InitContainers[1:], pod.Spec.Containers...) {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c.Name, Ready: true, AllocatedResources: c.Resources.Requests.DeepCopy(), Resources: c.Resources.DeepCopy(),
			})
		}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: t0}}}
		p.page[i] = *pod
	}
	return p
}

func (p *pagedPods) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return fmt.Errorf("not supported")
}

func (p *pagedPods) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if p.onPage != nil {
		p.onPage()
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	from := 0
	if o.Continue != "" {
		from, _ = strconv.Atoi(o.Continue)
	}
	n := min(int(o.Limit), p.total-from, len(p.page))
	for i := range n {
		p.page[i].Namespace = p.namespaces[(from+i)*len(p.namespaces)/p.total]
	}
	podList := list.(*corev1.PodList)
	podList.Items = p.page[:n]
	podList.Continue = ""
	if from+n < p.total {
		podList.Continue = strconv.Itoa(from + n)
	}
	return nil
}

// BenchmarkPass measures one metering pass (list in pages of 500,
// aggregate, write the windows that close) over 5,000 and 50,000 pods in
// 1,000 namespaces. It reports pods/s, bytes allocated per pod and the
// peak live heap during a pass, which stays flat as the pod count grows
// tenfold: a pass holds one page and the per-namespace sums, never the list.
//
// Run it with `make bench BENCH_PKGS=./internal/metering/`.
func BenchmarkPass(b *testing.B) {
	for _, pods := range []int{5_000, 50_000} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			reader := newPagedPods(pods, 1_000, DefaultPageSize)
			clock := clocktesting.NewFakeClock(t0.Add(30 * time.Second))
			m := &Meter{Reader: reader, Interval: time.Minute, Window: time.Hour, PageSize: DefaultPageSize,
				Output: sink.StdoutOutput, Stdout: io.Discard, Clock: clock, Log: logr.Discard()}
			r, err := m.open(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			pass := func() {
				clock.Step(time.Minute)
				if err := r.pass(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			pass() // warm up: the namespaces' sums exist from now on

			// Peak live heap of one pass, sampled after a GC at every page.
			var base, peak uint64
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base = ms.HeapAlloc
			reader.onPage = func() {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
			pass()
			reader.onPage = nil

			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				pass()
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			elapsed := b.Elapsed().Seconds()
			b.ReportMetric(float64(pods*b.N)/elapsed, "pods/s")
			b.ReportMetric(float64(ms.TotalAlloc-allocated)/float64(pods*b.N), "B/pod")
			b.ReportMetric(float64(peak-min(base, peak)), "peak-live-B")
		})
	}
}
