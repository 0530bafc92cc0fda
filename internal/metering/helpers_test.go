package metering

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// t0 is the start of a window in every table.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const gi = 1 << 30

type podOption func(*corev1.Pod)

// newPod is a Running pod with one container and no requests.
func newPod(namespace, name string, opts ...podOption) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func startedAt(t time.Time) podOption {
	return func(p *corev1.Pod) { p.Status.StartTime = &metav1.Time{Time: t} }
}

func inPhase(phase corev1.PodPhase) podOption {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

// resources sets the requests and limits of the first container; an empty
// string leaves a resource out.
func resources(cpuReq, memReq, cpuLim, memLim string) podOption {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = requirements(cpuReq, memReq, cpuLim, memLim)
	}
}

func requirements(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	list := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = apiresource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = apiresource.MustParse(mem)
		}
		if len(l) == 0 {
			return nil
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: list(cpuReq, memReq), Limits: list(cpuLim, memLim)}
}

// every returns the times from first to last (inclusive) step apart.
func every(first, last time.Time, step time.Duration) []time.Time {
	var ts []time.Time
	for t := first; !t.After(last); t = t.Add(step) {
		ts = append(ts, t)
	}
	return ts
}

// fakePods is a client.Reader that serves a changing set of pods in pages,
// the way the API server does with limit and continue.
type fakePods struct {
	mu   sync.Mutex
	pods []*corev1.Pod
	// failPage, when set, fails the list call for that page index once.
	failPage map[int]error
	// limits records the limit of every list call.
	limits []int64
}

func (f *fakePods) set(pods ...*corev1.Pod) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods = pods
}

func (f *fakePods) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return fmt.Errorf("the meter must not get single objects")
}

func (f *fakePods) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	podList, ok := list.(*corev1.PodList)
	if !ok {
		return fmt.Errorf("the meter listed %T", list)
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	if o.Limit <= 0 || o.Raw != nil && o.Raw.ResourceVersion != "" {
		return fmt.Errorf("unpaged or resourceVersion list: limit %d", o.Limit)
	}
	f.limits = append(f.limits, o.Limit)
	from := 0
	if o.Continue != "" {
		var err error
		if from, err = strconv.Atoi(o.Continue); err != nil {
			return err
		}
	}
	page := from / int(o.Limit)
	if err := f.failPage[page]; err != nil {
		delete(f.failPage, page)
		return err
	}
	to := min(from+int(o.Limit), len(f.pods))
	podList.Items = make([]corev1.Pod, 0, to-from)
	for _, p := range f.pods[from:to] {
		podList.Items = append(podList.Items, *p.DeepCopy())
	}
	if to < len(f.pods) {
		podList.Continue = strconv.Itoa(to)
	}
	return nil
}

var _ client.Reader = &fakePods{}
