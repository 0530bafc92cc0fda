package metering

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// extended adds a request and an equal limit of any resource to the first
// container.
func extended(name corev1.ResourceName, quantity string) podOption {
	return func(p *corev1.Pod) {
		r := &p.Spec.Containers[0].Resources
		if r.Requests == nil {
			r.Requests = corev1.ResourceList{}
		}
		if r.Limits == nil {
			r.Limits = corev1.ResourceList{}
		}
		r.Requests[name] = apiresource.MustParse(quantity)
		r.Limits[name] = apiresource.MustParse(quantity)
	}
}

func createdAt(t time.Time) podOption {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{Time: t} }
}

// finished puts the pod in a terminal phase, its containers terminated at
// the given times (one container each, the first being the pod's own).
func finished(phase corev1.PodPhase, at ...time.Time) podOption {
	return func(p *corev1.Pod) {
		p.Status.Phase = phase
		for i, t := range at {
			name := fmt.Sprintf("c%d", i)
			if i == 0 {
				name = p.Spec.Containers[0].Name
			} else {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name})
			}
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name:  name,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.Time{Time: t}}},
			})
		}
	}
}

func condition(kind corev1.PodConditionType, changed time.Time) podOption {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: kind, LastTransitionTime: metav1.Time{Time: changed}})
	}
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
	// expirePage, when set, answers the continue token of that page index
	// with 410 Expired once.
	expirePage map[int]bool
	// claims are served as PersistentVolumeClaims; claimsErr fails their
	// listing.
	claims    []*corev1.PersistentVolumeClaim
	claimsErr error
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
	o := (&client.ListOptions{}).ApplyOptions(opts)
	if o.Limit <= 0 || o.Raw != nil && o.Raw.ResourceVersion != "" {
		return fmt.Errorf("unpaged or resourceVersion list: limit %d", o.Limit)
	}
	switch l := list.(type) {
	case *corev1.PodList:
		f.limits = append(f.limits, o.Limit)
		items, next, err := pageOf(f, f.pods, o)
		for _, p := range items {
			l.Items = append(l.Items, *p.DeepCopy())
		}
		l.Continue = next
		return err
	case *corev1.PersistentVolumeClaimList:
		if f.claimsErr != nil {
			return f.claimsErr
		}
		items, next, err := pageOf(f, f.claims, o)
		for _, c := range items {
			l.Items = append(l.Items, *c.DeepCopy())
		}
		l.Continue = next
		return err
	default:
		return fmt.Errorf("the meter listed %T", list)
	}
}

// pageOf serves one page of objects the way the API server does with limit
// and continue.
func pageOf[T any](f *fakePods, objects []T, o *client.ListOptions) ([]T, string, error) {
	from := 0
	if o.Continue != "" {
		var err error
		if from, err = strconv.Atoi(o.Continue); err != nil {
			return nil, "", err
		}
	}
	page := from / int(o.Limit)
	if err := f.failPage[page]; err != nil {
		delete(f.failPage, page)
		return nil, "", err
	}
	if f.expirePage[page] && o.Continue != "" {
		delete(f.expirePage, page)
		return nil, "", apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result.")
	}
	to := min(from+int(o.Limit), len(objects))
	next := ""
	if to < len(objects) {
		next = strconv.Itoa(to)
	}
	return objects[from:to], next, nil
}

var _ client.Reader = &fakePods{}

// memoryCheckpoints is a CheckpointStore's backing that several processes
// share; each process gets its own handle, so fencing works as with the
// ConfigMap.
type memoryCheckpoints struct {
	mu      sync.Mutex
	data    []byte
	version int
	saves   int
	// probeErr is what Probe answers.
	probeErr error
}

func (m *memoryCheckpoints) handle() *memoryCheckpoint { return &memoryCheckpoint{shared: m} }

type memoryCheckpoint struct {
	shared *memoryCheckpoints
	seen   int
}

func (h *memoryCheckpoint) Describe() string { return "memory" }

func (h *memoryCheckpoint) Probe(context.Context) error { return h.shared.probeErr }

func (h *memoryCheckpoint) Load(context.Context) (*Checkpoint, error) {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	h.seen = h.shared.version
	if h.shared.data == nil {
		return nil, nil
	}
	return decodeCheckpoint(h.shared.data)
}

func (h *memoryCheckpoint) Save(_ context.Context, cp *Checkpoint) error {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	if h.seen != h.shared.version {
		return fmt.Errorf("memory checkpoint at version %d, this process read %d: %w", h.shared.version, h.seen, ErrFenced)
	}
	data, err := encodeCheckpoint(cp)
	if err != nil {
		return err
	}
	h.shared.data = data
	h.shared.version++
	h.shared.saves++
	h.seen = h.shared.version
	return nil
}
