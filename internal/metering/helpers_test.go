package metering

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// The pods and times the tests share (see package meteringtest).
var (
	t0           = meteringtest.T0
	newPod       = meteringtest.NewPod
	startedAt    = meteringtest.StartedAt
	resources    = meteringtest.Resources
	requirements = meteringtest.Requirements
)

const gi = meteringtest.Gi

// usageOf is the usage of pods that ran for secs seconds with the given
// requests and limits, in samples observations.
func usageOf(secs, cpuReq, memReq, cpuLim, memLim float64, samples int64) *usage.Usage {
	return &usage.Usage{
		PodSeconds: secs, CPURequestCoreSeconds: secs * cpuReq, MemoryRequestByteSeconds: secs * memReq,
		CPULimitCoreSeconds: secs * cpuLim, MemoryLimitByteSeconds: secs * memLim, Samples: samples,
	}
}

// plus is the sum of the figures usageOf sets.
func plus(a, b *usage.Usage) *usage.Usage {
	return &usage.Usage{
		PodSeconds: a.PodSeconds + b.PodSeconds, CPURequestCoreSeconds: a.CPURequestCoreSeconds + b.CPURequestCoreSeconds,
		MemoryRequestByteSeconds: a.MemoryRequestByteSeconds + b.MemoryRequestByteSeconds,
		CPULimitCoreSeconds:      a.CPULimitCoreSeconds + b.CPULimitCoreSeconds, MemoryLimitByteSeconds: a.MemoryLimitByteSeconds + b.MemoryLimitByteSeconds,
		Samples: a.Samples + b.Samples,
	}
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

// memoryCheckpoints is a checkpoint.Store's backing that several processes
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

func (h *memoryCheckpoint) Load(context.Context) (*checkpoint.Checkpoint, error) {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	h.seen = h.shared.version
	if h.shared.data == nil {
		return nil, nil
	}
	return checkpoint.Decode(h.shared.data)
}

func (h *memoryCheckpoint) Save(_ context.Context, cp *checkpoint.Checkpoint) error {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	if h.seen != h.shared.version {
		return fmt.Errorf("memory checkpoint at version %d, this process read %d: %w", h.shared.version, h.seen, checkpoint.ErrFenced)
	}
	data, err := checkpoint.Encode(cp)
	if err != nil {
		return err
	}
	h.shared.data = data
	h.shared.version++
	h.shared.saves++
	h.seen = h.shared.version
	return nil
}
