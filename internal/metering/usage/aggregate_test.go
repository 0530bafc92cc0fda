package usage

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// aggregate runs passes at the given times over the pods podsAt returns and
// collects the windows (an hour long) that close.
func aggregate(resume time.Time, passes []time.Time, podsAt func(time.Time) []*corev1.Pod) []Window {
	agg := NewAggregator(time.Hour, resume)
	closed := make([]Window, 0, len(passes))
	for _, at := range passes {
		p := agg.NewPass(at)
		for _, pod := range podsAt(at) {
			p.Add(pod)
		}
		agg.Commit(p)
		closed = append(closed, agg.TakeClosed()...)
	}
	return closed
}

// usage is the Usage of a pod reserving the given cores and bytes for secs
// seconds, seen samples times.
func usage(secs, cpuReq, memReq, cpuLim, memLim float64, samples int64) *Usage {
	return &Usage{
		PodSeconds:               secs,
		CPURequestCoreSeconds:    secs * cpuReq,
		MemoryRequestByteSeconds: secs * memReq,
		CPULimitCoreSeconds:      secs * cpuLim,
		MemoryLimitByteSeconds:   secs * memLim,
		Samples:                  samples,
	}
}

func window(start time.Time, usage map[string]*Usage) Window {
	return Window{Start: start, End: start.Add(time.Hour), Usage: usage}
}

func TestAggregate(t *testing.T) {
	// Passes every minute at :30 from 10:00:30 to 11:00:30 close the window
	// [10:00, 11:00); 60 passes fall inside it and the 61st straddles its end.
	minutely := every(t0.Add(30*time.Second), t0.Add(time.Hour+30*time.Second), time.Minute)
	always := func(pods ...*corev1.Pod) func(time.Time) []*corev1.Pod {
		return func(time.Time) []*corev1.Pod { return pods }
	}
	web := resources("500m", "1Gi", "1", "2Gi")

	tests := []struct {
		name   string
		resume time.Time
		passes []time.Time
		podsAt func(time.Time) []*corev1.Pod
		want   []Window
	}{{
		name:   "a pod running through the window counts exactly the window",
		resume: t0, passes: minutely,
		podsAt: always(newPod("acme-shop", "web", startedAt(t0.Add(-time.Hour)), web)),
		want:   []Window{window(t0, map[string]*Usage{"acme-shop": usage(3600, 0.5, gi, 1, 2*gi, 61)})},
	}, {
		name:   "a pod counts from its startTime, not from when it was first seen",
		resume: t0, passes: minutely,
		podsAt: always(newPod("acme-shop", "web", startedAt(t0.Add(20*time.Minute+15*time.Second)), web)),
		want:   []Window{window(t0, map[string]*Usage{"acme-shop": usage(2385, 0.5, gi, 1, 2*gi, 41)})},
	}, {
		name:   "a pod that disappears counts until the last pass that saw it",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(40 * time.Minute)) {
				return []*corev1.Pod{newPod("acme-shop", "web", startedAt(t0.Add(-time.Hour)), web)}
			}
			return nil
		},
		// Last seen at 10:39:30; it ended at some time before 10:40:30.
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(39*60+30, 0.5, gi, 1, 2*gi, 40)})},
	}, {
		name:   "a pod that succeeds counts until its last container finished",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(40 * time.Minute)) {
				return []*corev1.Pod{newPod("acme-shop", "job", startedAt(t0.Add(-time.Hour)), web)}
			}
			return []*corev1.Pod{newPod("acme-shop", "job", startedAt(t0.Add(-time.Hour)), web,
				finished(corev1.PodSucceeded, t0.Add(39*time.Minute+40*time.Second), t0.Add(39*time.Minute+50*time.Second)))}
		},
		// Billed up to 10:39:50, when the later of its two containers ended;
		// the passes after the one that saw it end add nothing.
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(39*60+50, 0.5, gi, 1, 2*gi, 41)})},
	}, {
		name:   "a job that starts and ends between two passes counts its exact lifetime, once",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(6 * time.Minute)) {
				return nil
			}
			return []*corev1.Pod{newPod("acme-shop", "job", createdAt(t0.Add(5*time.Minute+35*time.Second)),
				startedAt(t0.Add(5*time.Minute+40*time.Second)), web, finished(corev1.PodFailed, t0.Add(6*time.Minute)))}
		},
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(20, 0.5, gi, 1, 2*gi, 1)})},
	}, {
		name:   "a pod created after the previous pass counts from its startTime even if that lies before the pass",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(6 * time.Minute)) {
				return nil
			}
			// Created at 10:05:35, after the pass at 10:05:30 listed
			// everything, so nothing of it has been billed.
			return []*corev1.Pod{newPod("acme-shop", "job", createdAt(t0.Add(5*time.Minute+35*time.Second)),
				startedAt(t0.Add(5*time.Minute+20*time.Second)), web, finished(corev1.PodSucceeded, t0.Add(5*time.Minute+50*time.Second)))}
		},
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(30, 0.5, gi, 1, 2*gi, 1)})},
	}, {
		name:   "a start before the oldest open window counts from that window: the ones before are closed",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(6 * time.Minute)) {
				return nil
			}
			return []*corev1.Pod{newPod("acme-shop", "job", createdAt(t0.Add(5*time.Minute+35*time.Second)),
				startedAt(t0.Add(-5*time.Minute)), web, finished(corev1.PodSucceeded, t0.Add(5*time.Minute)))}
		},
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(300, 0.5, gi, 1, 2*gi, 1)})},
	}, {
		name:   "a pod that failed while starting counts until its last condition changed",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(10 * time.Minute)) {
				return []*corev1.Pod{newPod("acme-shop", "evicted", startedAt(t0.Add(-time.Hour)), web)}
			}
			return []*corev1.Pod{newPod("acme-shop", "evicted", startedAt(t0.Add(-time.Hour)), web, inPhase(corev1.PodFailed),
				condition(corev1.PodReady, t0.Add(9*time.Minute+45*time.Second)), condition(corev1.PodScheduled, t0.Add(-2*time.Hour)))}
		},
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(9*60+45, 0.5, gi, 1, 2*gi, 11)})},
	}, {
		name:   "pods that are Pending or Unknown, or ended without starting or without a trace of their end, count nothing and make no record",
		resume: t0, passes: minutely,
		podsAt: always(
			newPod("acme-shop", "pending", web, inPhase(corev1.PodPending)),
			newPod("acme-shop", "pulling", startedAt(t0), web, inPhase(corev1.PodPending)),
			newPod("acme-shop", "never-ran", web, finished(corev1.PodFailed, t0.Add(time.Minute))),
			newPod("acme-shop", "done", startedAt(t0), web, inPhase(corev1.PodSucceeded)),
			newPod("acme-shop", "crashed", startedAt(t0), web, inPhase(corev1.PodFailed)),
			newPod("acme-shop", "lost", startedAt(t0), web, inPhase(corev1.PodUnknown)),
			newPod("acme-shop", "backwards", startedAt(t0.Add(time.Minute)), web, finished(corev1.PodSucceeded, t0)),
		),
		want: nil,
	}, {
		name:   "a pod without requests or limits counts pod-seconds only",
		resume: t0, passes: minutely,
		podsAt: always(newPod("acme-shop", "bare", startedAt(t0.Add(-time.Hour)))),
		want:   []Window{window(t0, map[string]*Usage{"acme-shop": usage(3600, 0, 0, 0, 0, 61)})},
	}, {
		name:   "huge quantities neither overflow nor fail",
		resume: t0, passes: minutely,
		podsAt: always(newPod("acme-shop", "huge", startedAt(t0.Add(-time.Hour)), resources("1M", "1Pi", "1G", "8Ei"))),
		want:   []Window{window(t0, map[string]*Usage{"acme-shop": usage(3600, 1e6, math.Pow(2, 50), 1e9, 8*math.Pow(2, 60), 61)})},
	}, {
		name:   "a Running pod without startTime counts from the previous pass",
		resume: t0, passes: minutely,
		podsAt: func(at time.Time) []*corev1.Pod {
			if at.Before(t0.Add(30 * time.Minute)) {
				return nil
			}
			return []*corev1.Pod{newPod("acme-shop", "web", web)}
		},
		// First seen at 10:30:30, so it counts from 10:29:30.
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(30*60+30, 0.5, gi, 1, 2*gi, 31)})},
	}, {
		name:   "a pod whose startTime is after the pass (clock skew) counts from its startTime in the next pass",
		resume: t0, passes: minutely,
		podsAt: always(newPod("acme-shop", "web", startedAt(t0.Add(59*time.Minute+45*time.Second)), web)),
		// Seen at 10:59:30 (skipped) and 11:00:30: counts 10:59:45 to 11:00.
		want: []Window{window(t0, map[string]*Usage{"acme-shop": usage(15, 0.5, gi, 1, 2*gi, 1)})},
	}, {
		name:   "pods that ran through a time without passes count for every window from the resume point",
		resume: t0.Add(-2 * time.Hour), passes: []time.Time{t0.Add(30 * time.Second)},
		podsAt: always(
			newPod("acme-shop", "old", startedAt(t0.Add(-3*time.Hour)), web),
			newPod("acme-shop", "newer", startedAt(t0.Add(-90*time.Minute))),
		),
		// "newer" (no requests) started at 8:30, in the first window.
		want: []Window{
			window(t0.Add(-2*time.Hour), map[string]*Usage{"acme-shop": {
				PodSeconds: 3600 + 1800, CPURequestCoreSeconds: 1800, MemoryRequestByteSeconds: 3600 * gi,
				CPULimitCoreSeconds: 3600, MemoryLimitByteSeconds: 3600 * 2 * gi, Samples: 2,
			}}),
			window(t0.Add(-time.Hour), map[string]*Usage{"acme-shop": {
				PodSeconds: 2 * 3600, CPURequestCoreSeconds: 1800, MemoryRequestByteSeconds: 3600 * gi,
				CPULimitCoreSeconds: 3600, MemoryLimitByteSeconds: 3600 * 2 * gi, Samples: 2,
			}}),
		},
	}, {
		name:   "namespaces are kept apart, and a namespace whose pods all vanish stops getting records",
		resume: t0, passes: every(t0.Add(30*time.Second), t0.Add(2*time.Hour+30*time.Second), time.Minute),
		podsAt: func(at time.Time) []*corev1.Pod {
			pods := []*corev1.Pod{
				newPod("acme-shop", "a", startedAt(t0.Add(-time.Hour)), web),
				newPod("acme-shop", "b", startedAt(t0.Add(-time.Hour)), web),
			}
			if at.Before(t0.Add(70 * time.Minute)) {
				pods = append(pods, newPod("globex-crm", "db", startedAt(t0.Add(-time.Hour)), resources("2", "4Gi", "", "")))
			}
			return pods
		},
		want: []Window{
			window(t0, map[string]*Usage{
				"acme-shop":  usage(7200, 0.5, gi, 1, 2*gi, 122),
				"globex-crm": usage(3600, 2, 4*gi, 0, 0, 61),
			}),
			window(t0.Add(time.Hour), map[string]*Usage{
				"acme-shop":  usage(7200, 0.5, gi, 1, 2*gi, 122),
				"globex-crm": usage(9*60+30, 2, 4*gi, 0, 0, 10), // last seen at 11:09:30
			}),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := aggregate(tt.resume, tt.passes, tt.podsAt)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(1e-12, 1e-9), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("closed windows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEffectiveResources checks that a pod's reservation is Kubernetes'
// effective requests and limits, not a sum over its containers.
func TestEffectiveResources(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := corev1.Container{Name: "proxy", RestartPolicy: &always, Resources: requirements("100m", "64Mi", "200m", "128Mi")}
	initC := corev1.Container{Name: "migrate", Resources: requirements("2", "1Gi", "2", "1Gi")}
	app := func(name, cpu, mem string) corev1.Container {
		return corev1.Container{Name: name, Resources: requirements(cpu, mem, cpu, mem)}
	}
	mi := float64(1 << 20)

	tests := []struct {
		name                   string
		spec                   corev1.PodSpec
		cpuReq, memReq, cpuLim float64
		memLim                 float64
	}{{
		name:   "containers add up",
		spec:   corev1.PodSpec{Containers: []corev1.Container{app("a", "500m", "256Mi"), app("b", "250m", "256Mi")}},
		cpuReq: 0.75, memReq: 512 * mi, cpuLim: 0.75, memLim: 512 * mi,
	}, {
		name: "a larger init container raises the reservation; a sidecar started before it adds to it and to the pod",
		spec: corev1.PodSpec{
			InitContainers: []corev1.Container{sidecar, initC},
			Containers:     []corev1.Container{app("a", "500m", "256Mi")},
		},
		// max(0.5 + 0.1, 2 + 0.1) cores; max(256Mi + 64Mi, 1Gi + 64Mi).
		cpuReq: 2.1, memReq: 1088 * mi, cpuLim: 2.2, memLim: 1152 * mi,
	}, {
		name: "overhead adds to requests and to limits that are set",
		spec: corev1.PodSpec{
			Containers: []corev1.Container{app("a", "500m", "256Mi")},
			Overhead:   corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("50m"), corev1.ResourceMemory: apiresource.MustParse("32Mi")},
		},
		cpuReq: 0.55, memReq: 288 * mi, cpuLim: 0.55, memLim: 288 * mi,
	}, {
		name: "pod-level resources replace the containers' sum",
		spec: corev1.PodSpec{
			Containers: []corev1.Container{app("a", "500m", "256Mi"), app("b", "500m", "256Mi")},
			Resources:  &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("3")}, Limits: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("4")}},
		},
		cpuReq: 3, memReq: 512 * mi, cpuLim: 4, memLim: 512 * mi,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("acme-shop", "p", startedAt(t0.Add(-time.Hour)))
			pod.Spec = tt.spec
			got := aggregate(t0, []time.Time{t0.Add(30 * time.Minute), t0.Add(time.Hour)},
				func(time.Time) []*corev1.Pod { return []*corev1.Pod{pod} })
			want := []Window{window(t0, map[string]*Usage{"acme-shop": usage(3600, tt.cpuReq, tt.memReq, tt.cpuLim, tt.memLim, 2)})}
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 1e-9)); diff != "" {
				t.Errorf("closed windows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAccuracyBound checks the stated accuracy on random pods and passes
// that come at most one interval apart: a pod that runs through a window is
// exact; any other pod is short by less than one interval at its end (and
// exact at its start, which startTime tells) and never counted over.
func TestAccuracyBound(t *testing.T) {
	const interval = time.Minute
	rng := rand.New(rand.NewPCG(1, 2))
	type life struct {
		pod        *corev1.Pod
		start, end time.Time // Running in [start, end)
	}
	horizon := 4 * time.Hour
	lives := make([]life, 0, 300)
	for i := range 300 {
		start := t0.Add(time.Duration(rng.Int64N(int64(horizon))) - time.Hour)
		end := start.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		if i%10 == 0 {
			end = t0.Add(10 * horizon) // runs through everything
		}
		ns := fmt.Sprintf("cust%d-proj", i%7)
		lives = append(lives, life{newPod(ns, fmt.Sprint(i), startedAt(start), resources("1", "1Gi", "", "")), start, end})
	}
	var passes []time.Time
	for at := t0.Add(time.Duration(rng.Int64N(int64(interval)))); at.Before(t0.Add(horizon)); at = at.Add(time.Duration(1 + rng.Int64N(int64(interval)))) {
		passes = append(passes, at)
	}
	got := aggregate(t0, passes, func(at time.Time) []*corev1.Pod {
		var pods []*corev1.Pod
		for _, l := range lives {
			if !at.Before(l.start) && at.Before(l.end) {
				pods = append(pods, l.pod)
			}
		}
		return pods
	})
	if len(got) < 3 {
		t.Fatalf("only %d windows closed", len(got))
	}
	for _, w := range got {
		for ns, u := range w.Usage {
			// The truth and the largest error allowed, from the lifetimes.
			var truth, slack float64
			runThrough := true
			for _, l := range lives {
				if l.pod.Namespace != ns {
					continue
				}
				from, to := latest(l.start, w.Start, t0), earlier(l.end, w.End)
				if !to.After(from) {
					continue
				}
				truth += to.Sub(from).Seconds()
				if to.Before(w.End) {
					slack += interval.Seconds()
					runThrough = false
				}
				if from.After(w.Start) {
					runThrough = false
				}
			}
			const eps = 1e-6
			if u.PodSeconds > truth+eps || u.PodSeconds < truth-slack-eps {
				t.Errorf("%s %s: %.3f pod-seconds, want %.3f (at most %.0f less)", w.Start.Format(time.TimeOnly), ns, u.PodSeconds, truth, slack)
			}
			if runThrough && math.Abs(u.PodSeconds-truth) > eps {
				t.Errorf("%s %s: pods ran through the window, but %.6f pod-seconds != %.6f", w.Start.Format(time.TimeOnly), ns, u.PodSeconds, truth)
			}
			if math.Abs(u.CPURequestCoreSeconds-u.PodSeconds) > eps || math.Abs(u.MemoryRequestByteSeconds-u.PodSeconds*gi) > eps*gi {
				t.Errorf("%s %s: requests do not match pod-seconds: %+v", w.Start.Format(time.TimeOnly), ns, u)
			}
		}
	}
}

func latest(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.After(m) {
			m = t
		}
	}
	return m
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func TestAddClaim(t *testing.T) {
	fast, classless := "fast", ""
	claim := func(ns string, created time.Time, phase corev1.PersistentVolumeClaimPhase, class *string, capacity, request string) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data", CreationTimestamp: metav1.NewTime(created)},
			Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: class},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: phase},
		}
		if request != "" {
			c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse(request)}
		}
		if capacity != "" {
			c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse(capacity)}
		}
		return c
	}
	longAgo := t0.Add(-24 * time.Hour)
	tests := []struct {
		name   string
		claims []*corev1.PersistentVolumeClaim
		want   map[string]*Usage
	}{
		{"a Bound claim counts its capacity, not its request, for the whole pass",
			[]*corev1.PersistentVolumeClaim{claim("acme-shop", longAgo, corev1.ClaimBound, &fast, "10Gi", "8Gi")},
			map[string]*Usage{"acme-shop": {StorageByteSeconds: 600 * 10 * gi, StorageByteSecondsByClass: map[string]float64{"fast": 600 * 10 * gi}}}},
		{"without a capacity the request counts; no class is the empty class",
			[]*corev1.PersistentVolumeClaim{claim("acme-shop", longAgo, corev1.ClaimBound, nil, "", "1Gi")},
			map[string]*Usage{"acme-shop": {StorageByteSeconds: 600 * gi, StorageByteSecondsByClass: map[string]float64{"": 600 * gi}}}},
		{"an explicitly empty class is the empty class too, and classes add up",
			[]*corev1.PersistentVolumeClaim{
				claim("acme-shop", longAgo, corev1.ClaimBound, &classless, "1Gi", ""),
				claim("acme-shop", longAgo, corev1.ClaimBound, &fast, "2Gi", ""),
				claim("acme-shop", longAgo, corev1.ClaimBound, nil, "1Gi", ""),
			},
			map[string]*Usage{"acme-shop": {StorageByteSeconds: 600 * 4 * gi, StorageByteSecondsByClass: map[string]float64{"": 600 * 2 * gi, "fast": 600 * 2 * gi}}}},
		{"a claim created during the pass counts from its creation",
			[]*corev1.PersistentVolumeClaim{claim("acme-shop", t0.Add(4*time.Minute), corev1.ClaimBound, &fast, "1Gi", "")},
			map[string]*Usage{"acme-shop": {StorageByteSeconds: 360 * gi, StorageByteSecondsByClass: map[string]float64{"fast": 360 * gi}}}},
		{"Pending and Lost claims count nothing",
			[]*corev1.PersistentVolumeClaim{
				claim("acme-shop", longAgo, corev1.ClaimPending, &fast, "", "1Gi"),
				claim("acme-shop", longAgo, corev1.ClaimLost, &fast, "1Gi", "1Gi"),
			},
			map[string]*Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := NewAggregator(time.Hour, t0)
			p := agg.NewPass(t0.Add(10 * time.Minute))
			for _, c := range tt.claims {
				p.AddClaim(c)
			}
			agg.Commit(p)
			got := map[string]*Usage{}
			for _, w := range agg.Open() {
				got = w.Usage
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExactLifetimes checks the exact-lifetime rule on random pods of any
// lifetime, many shorter than the interval, that are listed (Pending, then
// Running, then Succeeded or Failed) from their creation until at least one
// pass after their end, with the meter restarting from its checkpoint at
// random passes: every window's usage is the exact integral. Some pods are
// created after their start, as a status written late makes them look.
func TestExactLifetimes(t *testing.T) {
	const interval = time.Minute
	rng := rand.New(rand.NewPCG(3, 4))
	type life struct {
		namespace, name     string
		created, start, end time.Time
		failed              bool
	}
	horizon := 3 * time.Hour
	lives := make([]life, 0, 400)
	for i := range 400 {
		created := t0.Add(time.Duration(rng.Int64N(int64(horizon))) - 30*time.Minute)
		start := created.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		length := time.Duration(rng.Int64N(int64(40 * time.Second))) // shorter than the interval
		if i%4 == 0 {
			length = time.Duration(rng.Int64N(int64(2 * time.Hour)))
		}
		if i%7 == 0 {
			// A pod whose start the API server learns only after it
			// lists it (in a test, a status written with a past
			// startTime): no pass saw it before its creation.
			created = start.Add(time.Duration(rng.Int64N(int64(min(length, 30*time.Second)) + 1)))
		}
		lives = append(lives, life{fmt.Sprintf("cust%d-proj", i%5), fmt.Sprint(i), created, start, start.Add(length), i%3 == 0})
	}
	passes := []time.Time{}
	for at := t0.Add(time.Duration(rng.Int64N(int64(interval)))); at.Before(t0.Add(horizon)); at = at.Add(time.Duration(1 + rng.Int64N(int64(interval)))) {
		passes = append(passes, at)
	}
	podsAt := func(at time.Time) []*corev1.Pod {
		var pods []*corev1.Pod
		for _, l := range lives {
			// Listed from its creation until two intervals after its end.
			if at.Before(l.created) || !at.Before(l.end.Add(2*interval)) {
				continue
			}
			opts := []podOption{createdAt(l.created), resources("2", "1Gi", "", ""), extended("nvidia.com/gpu", "1")}
			switch {
			case at.Before(l.start):
				opts = append(opts, inPhase(corev1.PodPending))
			case at.Before(l.end):
				opts = append(opts, startedAt(l.start))
			case l.failed:
				opts = append(opts, startedAt(l.start), finished(corev1.PodFailed, l.end))
			default:
				opts = append(opts, startedAt(l.start), finished(corev1.PodSucceeded, l.end.Add(-time.Second), l.end))
			}
			pods = append(pods, newPod(l.namespace, l.name, opts...))
		}
		return pods
	}

	agg := NewAggregator(time.Hour, t0)
	got := make([]Window, 0, len(passes))
	for i, at := range passes {
		if i%17 == 0 {
			// A restart: a new process continues from the checkpoint.
			agg = RestoreAggregator(time.Hour, agg.Last(), agg.Open())
		}
		p := agg.NewPass(at)
		for _, pod := range podsAt(at) {
			p.Add(pod)
		}
		agg.Commit(p)
		got = append(got, agg.TakeClosed()...)
	}
	if len(got) < 2 {
		t.Fatalf("only %d windows closed", len(got))
	}
	for _, w := range got {
		truth := map[string]float64{}
		for _, l := range lives {
			from, to := latest(l.start, w.Start, t0), earlier(l.end, w.End)
			if to.After(from) {
				truth[l.namespace] += to.Sub(from).Seconds()
			}
		}
		for ns, want := range truth {
			u := w.Usage[ns]
			if u == nil {
				t.Errorf("%s %s: no usage, want %.3f pod-seconds", w.Start.Format(time.TimeOnly), ns, want)
				continue
			}
			const eps = 1e-6
			if math.Abs(u.PodSeconds-want) > eps || math.Abs(u.CPURequestCoreSeconds-2*want) > eps ||
				math.Abs(u.ExtendedResourceRequestSeconds["nvidia.com/gpu"]-want) > eps {
				t.Errorf("%s %s: %.6f pod-seconds, %.6f core-seconds, %v GPU-seconds; want exactly %.6f, %.6f, %.6f",
					w.Start.Format(time.TimeOnly), ns, u.PodSeconds, u.CPURequestCoreSeconds, u.ExtendedResourceRequestSeconds, want, 2*want, want)
			}
		}
	}
}

func TestExtendedResources(t *testing.T) {
	gpuPod := newPod("acme-ml", "train", startedAt(t0.Add(-time.Hour)), resources("1", "", "", ""),
		extended("nvidia.com/gpu", "2"), extended("example.com/fpga", "1"), extended(corev1.ResourceEphemeralStorage, "10Gi"),
		extended("hugepages-2Mi", "64Mi"))
	// An init container asking for more GPUs than the app raises the
	// effective request, as for CPU.
	gpuPod.Spec.InitContainers = []corev1.Container{{Name: "warmup", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{"amd.com/gpu": apiresource.MustParse("4")},
		Limits:   corev1.ResourceList{"amd.com/gpu": apiresource.MustParse("4")},
	}}}
	got := aggregate(t0, []time.Time{t0.Add(30 * time.Minute), t0.Add(time.Hour)},
		func(time.Time) []*corev1.Pod { return []*corev1.Pod{gpuPod} })
	u := usage(3600, 1, 0, 0, 0, 2)
	u.EphemeralStorageRequestByteSeconds = 3600 * 10 * gi
	u.EphemeralStorageLimitByteSeconds = 3600 * 10 * gi
	u.ExtendedResourceRequestSeconds = map[string]float64{"nvidia.com/gpu": 7200, "example.com/fpga": 3600, "amd.com/gpu": 4 * 3600}
	u.ExtendedResourceLimitSeconds = map[string]float64{"nvidia.com/gpu": 7200, "example.com/fpga": 3600, "amd.com/gpu": 4 * 3600}
	want := []Window{window(t0, map[string]*Usage{"acme-ml": u})}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 1e-9)); diff != "" {
		t.Errorf("closed windows (-want +got):\n%s", diff)
	}
}

func TestIsExtendedResourceName(t *testing.T) {
	for name, want := range map[corev1.ResourceName]bool{
		"nvidia.com/gpu": true, "amd.com/gpu": true, "example.com/foo": true, "gpu.intel.com/i915": true,
		corev1.ResourceCPU: false, corev1.ResourceMemory: false, corev1.ResourceEphemeralStorage: false, "hugepages-2Mi": false,
		"kubernetes.io/batch-cpu": false, "node.kubernetes.io/foo": false, "requests.nvidia.com/gpu": false, corev1.ResourceStorage: false,
	} {
		if got := isExtendedResourceName(name); got != want {
			t.Errorf("isExtendedResourceName(%q) = %v, want %v", name, got, want)
		}
	}
}
