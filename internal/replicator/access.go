package replicator

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/events"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// accessChanges collects, during one pass, which subject gained or lost
// which role, so that the pass reports them in one Event per direction:
// an Event is a write, and a new project with many roles would otherwise
// cost one per binding.
type accessChanges struct {
	namespace     string
	granted, lost []string
}

// record notes the subjects of rb that are in after but not before
// (granted) and the other way round (lost).
func (a *accessChanges) record(rb *rbacv1.RoleBinding, before, after []rbacv1.Subject) {
	a.namespace = rb.Namespace
	role := rb.Labels[meshv1.LabelRole]
	if role == "" {
		role = strings.TrimPrefix(rb.Name, RoleBindingName(""))
	}
	had, has := subjectSet(before), subjectSet(after)
	for _, s := range after {
		if !had[subjectKey(s)] {
			a.granted = append(a.granted, fmt.Sprintf("%s %q gained role %s (ClusterRole %s)", s.Kind, s.Name, role, rb.RoleRef.Name))
		}
	}
	for _, s := range before {
		if !has[subjectKey(s)] {
			a.lost = append(a.lost, fmt.Sprintf("%s %q lost role %s (ClusterRole %s)", s.Kind, s.Name, role, rb.RoleRef.Name))
		}
	}
}

// emit sends the Events, regarding project.
func (a *accessChanges) emit(recorder events.EventRecorder, project *meshv1.MeshProject) {
	if len(a.granted) > 0 {
		recorder.Eventf(project, nil, corev1.EventTypeNormal, "AccessGranted", "Bind", "%s in namespace %s", joinCapped(a.granted, maxNoteLength), a.namespace)
	}
	if len(a.lost) > 0 {
		recorder.Eventf(project, nil, corev1.EventTypeNormal, "AccessRevoked", "Unbind", "%s in namespace %s", joinCapped(a.lost, maxNoteLength), a.namespace)
	}
}

// maxNoteLength keeps an Event's note under the API's 1 kB limit, with room
// for the namespace.
const maxNoteLength = 900

// joinCapped joins changes with "; " into at most about limit bytes and
// says how many did not fit.
func joinCapped(changes []string, limit int) string {
	var b strings.Builder
	for i, c := range changes {
		if b.Len()+len(c)+2 > limit {
			if i == 0 {
				// One that does not fit alone is cut, not left out.
				b.WriteString(truncated(c, limit-32))
				i++
			}
			if i < len(changes) {
				fmt.Fprintf(&b, "; and %d more", len(changes)-i)
			}
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c)
	}
	return b.String()
}

func subjectKey(s rbacv1.Subject) string { return s.Kind + "/" + s.Namespace + "/" + s.Name }

func subjectSet(subjects []rbacv1.Subject) map[string]bool {
	set := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		set[subjectKey(s)] = true
	}
	return set
}
