// Package meteringtest builds the pods and times the tests of the metering
// packages share. It is for tests only.
package meteringtest

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// T0 is the start of a window in every table.
var T0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Gi is a gibibyte.
const Gi = 1 << 30

// PodOption changes a pod NewPod makes.
type PodOption func(*corev1.Pod)

// NewPod is a Running pod with one container and no requests.
func NewPod(namespace, name string, opts ...PodOption) *corev1.Pod {
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

// StartedAt sets the pod's status.startTime.
func StartedAt(t time.Time) PodOption {
	return func(p *corev1.Pod) { p.Status.StartTime = &metav1.Time{Time: t} }
}

// Extended adds a request and an equal limit of any resource to the first
// container.
func Extended(name corev1.ResourceName, quantity string) PodOption {
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

// CreatedAt sets the pod's creationTimestamp.
func CreatedAt(t time.Time) PodOption {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{Time: t} }
}

// Finished puts the pod in a terminal phase, its containers terminated at
// the given times (one container each, the first being the pod's own).
func Finished(phase corev1.PodPhase, at ...time.Time) PodOption {
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

// Condition adds a condition that changed at changed.
func Condition(kind corev1.PodConditionType, changed time.Time) PodOption {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: kind, LastTransitionTime: metav1.Time{Time: changed}})
	}
}

// InPhase sets the pod's phase.
func InPhase(phase corev1.PodPhase) PodOption {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

// Resources sets the requests and limits of the first container; an empty
// string leaves a resource out.
func Resources(cpuReq, memReq, cpuLim, memLim string) PodOption {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = Requirements(cpuReq, memReq, cpuLim, memLim)
	}
}

// Requirements are the requests and limits of a container; an empty string leaves a resource out.
func Requirements(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
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

// Every returns the times from first to last (inclusive) step apart.
func Every(first, last time.Time, step time.Duration) []time.Time {
	var ts []time.Time
	for t := first; !t.After(last); t = t.Add(step) {
		ts = append(ts, t)
	}
	return ts
}
