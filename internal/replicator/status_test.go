package replicator

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// A conflict or a refused bind behind another problem is still known to
// the next pass, which then looks before it writes.
func TestBlockedByFindsLaterProblems(t *testing.T) {
	r := &MeshProjectReconciler{Recorder: events.NewFakeRecorder(10)}
	project := &meshv1.MeshProject{}
	out := &outcome{}
	out.block(ReasonLandingZoneNotFound, `landing zone "gone" does not exist`)
	out.block(ReasonNamespaceConflict, "namespace kube-system "+notCreatedByOperator+"; it is left untouched")
	out.block(ReasonClusterRoleNotBindable, bindRefusedMessage+` "custom" (role "admin")`)
	r.setStatus(project, out, nil)

	for reason, want := range map[string]bool{
		ReasonLandingZoneNotFound:    true,
		ReasonNamespaceConflict:      true,
		ReasonClusterRoleNotBindable: true,
		ReasonRoleBindingConflict:    true, // the same words; it only costs a look
		ReasonUnknownRole:            false,
		ReasonQuotaAboveMaximum:      false,
	} {
		if got := blockedBy(project, reason); got != want {
			t.Errorf("blockedBy(%s) = %v, want %v", reason, got, want)
		}
	}
	project.Status.Conditions[0].Status = metav1.ConditionTrue
	if blockedBy(project, ReasonLandingZoneNotFound) {
		t.Error("a Ready project is blocked")
	}
}
