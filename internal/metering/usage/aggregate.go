package usage

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/resource"
)

// Aggregator accumulates usage per (window, namespace). It is pure: the
// caller says when each pass happened, so tests drive it with a fake clock.
//
// Each pass at time t bills what pods reserved up to t that no earlier pass
// billed (see billedSpan): a Running pod from max(startTime, last) to t,
// where last is the time of the previous pass (or the resume point before
// the first one); a pod that Succeeded or Failed up to its end; a pod
// created since last from its startTime. Usage is split at window
// boundaries, so a pod that runs through a window counts for exactly the
// whole window and one that ran for 20 seconds between two passes for 20
// seconds.
type Aggregator struct {
	window time.Duration
	last   time.Time
	// open holds the windows that have usage and have not closed yet, keyed
	// by the window start in Unix nanoseconds.
	open map[int64]map[string]*Usage
}

// Window is the usage of one closed window, per namespace.
type Window struct {
	Start, End time.Time
	Usage      map[string]*Usage
}

// NewAggregator returns an aggregator whose first pass counts from resume.
func NewAggregator(window time.Duration, resume time.Time) *Aggregator {
	return &Aggregator{window: window, last: resume.UTC(), open: map[int64]map[string]*Usage{}}
}

// WindowStart is the start of the window that holds t. Windows that divide a
// day are aligned to UTC midnight.
func WindowStart(t time.Time, window time.Duration) time.Time {
	return t.UTC().Truncate(window)
}

// Last is the time up to which pods have been counted.
func (a *Aggregator) Last() time.Time { return a.last }

// NewPass starts a pass at t. Add the pods it lists, then Commit it; a pass
// that is not committed (because listing failed half way) leaves no trace.
func (a *Aggregator) NewPass(t time.Time) *Pass {
	return &Pass{
		from:   a.last,
		to:     t.UTC(),
		window: a.window,
		usage:  map[int64]map[string]*Usage{},
		reqs:   corev1.ResourceList{},
		limits: corev1.ResourceList{},
	}
}

// Commit merges a finished pass. Passes must be committed in the order they
// were started, one at a time; a pass at or before Last adds nothing.
func (a *Aggregator) Commit(p *Pass) {
	if !p.to.After(a.last) {
		return
	}
	for ws, byNS := range p.usage {
		open := a.open[ws]
		if open == nil {
			open = make(map[string]*Usage, len(byNS))
			a.open[ws] = open
		}
		for ns, u := range byNS {
			if o := open[ns]; o != nil {
				o.add(u)
			} else {
				open[ns] = u
			}
		}
	}
	a.last = p.to
}

// TakeClosed removes and returns, oldest first, the windows that ended at or
// before Last: no later pass can add to them.
func (a *Aggregator) TakeClosed() []Window {
	var closed []Window
	for ws, usage := range a.open {
		start := time.Unix(0, ws).UTC()
		end := start.Add(a.window)
		if end.After(a.last) {
			continue
		}
		closed = append(closed, Window{Start: start, End: end, Usage: usage})
		delete(a.open, ws)
	}
	slices.SortFunc(closed, func(x, y Window) int { return x.Start.Compare(y.Start) })
	return closed
}

// Open returns the windows that are still open, oldest first, without
// removing them.
func (a *Aggregator) Open() []Window {
	open := make([]Window, 0, len(a.open))
	for _, ws := range slices.Sorted(maps.Keys(a.open)) {
		start := time.Unix(0, ws).UTC()
		open = append(open, Window{Start: start, End: start.Add(a.window), Usage: a.open[ws]})
	}
	return open
}

// RestoreAggregator continues where an earlier process left off: it had
// counted up to last and held the open windows.
func RestoreAggregator(window time.Duration, last time.Time, open []Window) *Aggregator {
	a := NewAggregator(window, last)
	for _, w := range open {
		a.open[w.Start.UnixNano()] = w.Usage
	}
	return a
}

// Pass accumulates one listing of all pods. It holds per-namespace sums,
// never pods.
type Pass struct {
	from, to time.Time
	window   time.Duration
	usage    map[int64]map[string]*Usage
	// reqs and limits are reused by every pod, to spare allocations.
	reqs, limits corev1.ResourceList

	// Listed counts the pods added; Counted those the pass billed time
	// for. Claims counts the Bound claims that were counted.
	Listed, Counted, Claims int

	// Invalid counts, per namespace and resource, the quantities that were
	// counted as 0 because they are out of bounds (see checkedQuantity);
	// FirstInvalid describes the first of them, for the log.
	Invalid      map[InvalidQuantity]int
	FirstInvalid string
}

// Time is the time of the pass: it bills up to then.
func (p *Pass) Time() time.Time { return p.to }

// InvalidQuantity names a resource of a namespace whose quantity was out of
// bounds in a pass.
type InvalidQuantity struct {
	Namespace string
	// Resource is requests.<name> or limits.<name> for cpu, memory,
	// ephemeral-storage and extended resources, or storage.
	Resource string
}

// The largest quantities the meter counts: 2^63 bytes (8 EiB) of memory or
// storage per pod or claim, and 2^63 millicores (about 9.2e15 cores) per
// pod. Anything larger, negative or not finite as a float64 (a valid
// quantity such as 1e400 is +Inf) is not a real reservation: it would turn
// the namespace's sums into +Inf, which no record and no checkpoint can
// hold. Such a quantity counts as 0 for that resource of that pod (the pod
// still counts its pod-seconds and its other resources), and
// meshstack_metering_invalid_quantities_total counts it.
const (
	MaxBytes = float64(1 << 63)
	MaxCores = float64(1<<63) / 1000
)

// The bounds as quantities: a quantity is compared exactly, since
// AsApproximateFloat64 saturates some large ones (9Ei) at 2^63.
var (
	maxBytesQuantity = apiresource.MustParse("8Ei")
	maxCoresQuantity = apiresource.MustParse("9223372036854775808m")
)

// podResourcesOptions makes PodRequests and PodLimits return what the
// scheduler and kubelet reserve for a pod: init and sidecar containers,
// overhead, pod-level resources and, after an in-place resize, the larger of
// the spec and what the kubelet allocated.
var podResourcesOptions = resource.PodResourcesOptions{
	UseStatusResources: true,
	InPlacePodLevelResourcesVerticalScalingEnabled: true,
}

// Add counts what pod reserved in the part of its life this pass bills
// (see billedSpan): Running pods up to the pass, pods that Succeeded or
// Failed up to their end.
func (p *Pass) Add(pod *corev1.Pod) {
	p.Listed++
	start, end, ok := p.billedSpan(pod)
	if !ok {
		return
	}
	p.Counted++

	opts := podResourcesOptions
	opts.Reuse = p.reqs
	reqs := resource.PodRequests(pod, opts)
	opts.Reuse = p.limits
	limits := resource.PodLimits(pod, opts)
	cpuReq := p.checkedQuantity(pod, "requests.cpu", reqs, corev1.ResourceCPU, &maxCoresQuantity)
	memReq := p.checkedQuantity(pod, "requests.memory", reqs, corev1.ResourceMemory, &maxBytesQuantity)
	cpuLim := p.checkedQuantity(pod, "limits.cpu", limits, corev1.ResourceCPU, &maxCoresQuantity)
	memLim := p.checkedQuantity(pod, "limits.memory", limits, corev1.ResourceMemory, &maxBytesQuantity)
	ephReq := p.checkedQuantity(pod, "requests.ephemeral-storage", reqs, corev1.ResourceEphemeralStorage, &maxBytesQuantity)
	ephLim := p.checkedQuantity(pod, "limits.ephemeral-storage", limits, corev1.ResourceEphemeralStorage, &maxBytesQuantity)
	extended := p.extendedResources(pod, reqs, limits)

	p.spread(pod.Namespace, start, end, func(u *Usage, seconds float64) {
		u.PodSeconds += seconds
		u.CPURequestCoreSeconds += cpuReq * seconds
		u.MemoryRequestByteSeconds += memReq * seconds
		u.CPULimitCoreSeconds += cpuLim * seconds
		u.MemoryLimitByteSeconds += memLim * seconds
		u.EphemeralStorageRequestByteSeconds += ephReq * seconds
		u.EphemeralStorageLimitByteSeconds += ephLim * seconds
		for _, x := range extended {
			u.addExtended(x, seconds)
		}
		u.Samples++
	})
}

// AddClaim counts claim if it is Bound: its capacity (status.capacity, else
// the request) from its creation, per storage class.
func (p *Pass) AddClaim(claim *corev1.PersistentVolumeClaim) {
	if claim.Status.Phase != corev1.ClaimBound {
		return
	}
	start := p.from
	if created := claim.CreationTimestamp.Time; created.After(start) {
		start = created.UTC()
	}
	if !start.Before(p.to) {
		return
	}
	list := claim.Status.Capacity
	if _, ok := list[corev1.ResourceStorage]; !ok {
		list = claim.Spec.Resources.Requests
	}
	bytes := p.checkedQuantity(claim, "storage", list, corev1.ResourceStorage, &maxBytesQuantity)
	class := ""
	if claim.Spec.StorageClassName != nil {
		class = *claim.Spec.StorageClassName
	}
	p.Claims++
	p.spread(claim.Namespace, start, p.to, func(u *Usage, seconds float64) {
		u.StorageByteSeconds += bytes * seconds
		if u.StorageByteSecondsByClass == nil {
			u.StorageByteSecondsByClass = map[string]float64{}
		}
		u.StorageByteSecondsByClass[strings.Clone(class)] += bytes * seconds
	})
}

// spread calls add with the seconds from start to end that fall into each
// window, and that window's usage of namespace.
func (p *Pass) spread(namespace string, start, end time.Time, add func(u *Usage, seconds float64)) {
	for ws := WindowStart(start, p.window); ws.Before(end); ws = ws.Add(p.window) {
		from, to := start, end
		if ws.After(from) {
			from = ws
		}
		if we := ws.Add(p.window); we.Before(to) {
			to = we
		}
		add(p.usageOf(ws, namespace), to.Sub(from).Seconds())
	}
}

func (p *Pass) usageOf(windowStart time.Time, namespace string) *Usage {
	ws := windowStart.UnixNano()
	byNS := p.usage[ws]
	if byNS == nil {
		byNS = map[string]*Usage{}
		p.usage[ws] = byNS
	}
	u := byNS[namespace]
	if u == nil {
		u = &Usage{}
		// Clone the key: the namespace string points into the page of pods,
		// which must not outlive the page.
		byNS[strings.Clone(namespace)] = u
	}
	return u
}

// checkedQuantity is the resource name of obj in cores or bytes (from
// list, label naming it as InvalidQuantity.Resource does), 0 when it is
// absent. It is a float, so huge quantities (petabytes, millions of cores)
// neither overflow nor fail; one above bound, negative or not finite counts
// as 0 and is recorded in Invalid.
func (p *Pass) checkedQuantity(obj metav1.Object, label string, list corev1.ResourceList, name corev1.ResourceName, bound *apiresource.Quantity) float64 {
	q, ok := list[name]
	if !ok {
		return 0
	}
	if q.Sign() >= 0 && q.Cmp(*bound) <= 0 {
		if v := q.AsApproximateFloat64(); finite(v) {
			return v
		}
	}
	if p.Invalid == nil {
		p.Invalid = map[InvalidQuantity]int{}
		p.FirstInvalid = fmt.Sprintf("%s %s/%s: %s %s", kindOf(obj), obj.GetNamespace(), obj.GetName(), label, q.String())
	}
	p.Invalid[InvalidQuantity{Namespace: strings.Clone(obj.GetNamespace()), Resource: label}]++
	return 0
}

func kindOf(obj metav1.Object) string {
	if _, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		return "PersistentVolumeClaim"
	}
	return "Pod"
}

// finite reports whether v is a figure a sum may hold: finite and not
// negative.
func finite(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
