package usage

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// billedSpan is the part of pod's life that a pass from p.from to p.to
// bills, and false when it bills nothing.
//
// A pod is billed from status.startTime to its end: the pass's time while
// it is Running, the time its last container terminated once it Succeeded
// or Failed. Each pass bills only what no earlier pass can have billed, and
// needs to remember nothing per pod to know it:
//
//   - Every earlier pass billed a pod it saw up to that pass's time at most
//     (never a later time), and passes follow one another, so the earlier
//     passes together billed at most up to p.from.
//   - A pod created at or after p.from did not exist when the previous pass
//     listed it (a listing starts after the pass's time), so no pass billed
//     anything of it: its whole life is billed now, from its startTime.
//     Only the start of the oldest window still open (the window holding
//     p.from) bounds it: the windows before it are closed, perhaps
//     delivered, and a start before it can only be a clock that lies.
//   - A pod created before p.from was listed by the previous pass, which
//     billed it up to p.from if it had started: this pass bills it from
//     p.from.
//
// So a pod is billed exactly once for every moment from its start to its
// end, across passes, restarts and a change of leader (p.from comes from
// the checkpoint), provided some pass lists it after it started. What this
// misses: a pod deleted before any pass listed it after its start, and a
// pod whose startTime the previous pass could not see yet although it lay
// before that pass (the kubelet reports it late): it is billed from the
// previous pass, short by the report's delay.
func (p *Pass) billedSpan(pod *corev1.Pod) (start, end time.Time, ok bool) {
	switch pod.Status.Phase {
	case corev1.PodRunning:
		end = p.to
	case corev1.PodSucceeded, corev1.PodFailed:
		if pod.Status.StartTime == nil {
			return start, end, false // never ran
		}
		if end, ok = finishedAt(pod); !ok {
			return start, end, false
		}
	default:
		// Pending pods have not started; Unknown ones are on a node that
		// stopped reporting, and are billed again once it does.
		return start, end, false
	}
	start = p.from
	if st := pod.Status.StartTime; st != nil {
		start = st.UTC()
		if pod.CreationTimestamp.Time.Before(p.from) {
			start = later(start, p.from)
		} else {
			start = later(start, WindowStart(p.from, p.window))
		}
	}
	if end.After(p.to) {
		end = p.to
	}
	return start, end, start.Before(end)
}

// finishedAt is when a terminated pod ended: when the last of its
// containers terminated, or, if the kubelet recorded none of that (a pod
// that failed while its containers were being created), the last change of
// its conditions.
func finishedAt(pod *corev1.Pod) (time.Time, bool) {
	var end time.Time
	for _, statuses := range [][]corev1.ContainerStatus{
		pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses,
	} {
		for i := range statuses {
			if t := statuses[i].State.Terminated; t != nil {
				end = later(end, t.FinishedAt.Time)
			}
		}
	}
	if end.IsZero() {
		for i := range pod.Status.Conditions {
			end = later(end, pod.Status.Conditions[i].LastTransitionTime.Time)
		}
	}
	return end.UTC(), !end.IsZero()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
