package replicator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// ConditionReady is True when the namespace and every RoleBinding match the spec.
const ConditionReady = "Ready"

// Reasons of the Ready condition.
const (
	ReasonReconciled           = "Reconciled"
	ReasonNamespaceConflict    = "NamespaceConflict"
	ReasonNamespaceTerminating = "NamespaceTerminating"
	ReasonUnknownRole          = "UnknownRole"
	ReasonClusterRoleNotFound  = "ClusterRoleNotFound"
	ReasonReconcileFailed      = "ReconcileFailed"

	// ReasonInvalidSubject: a user or group is empty or would be bound as
	// a "system:" name; it is left out of the RoleBinding.
	ReasonInvalidSubject = "InvalidSubject"
	// ReasonRoleBindingNameClash: two roles of the mapping need the same
	// RoleBinding name; the later one's binding is left out.
	ReasonRoleBindingNameClash = "RoleBindingNameClash"

	// ReasonClusterRoleNotBindable: the API server refused a RoleBinding
	// because the operator may not bind its ClusterRole.
	ReasonClusterRoleNotBindable = "ClusterRoleNotBindable"
	// ReasonLandingZoneNotFound: the project's landing zone does not exist.
	ReasonLandingZoneNotFound = "LandingZoneNotFound"
	// ReasonLandingZoneDisabled: the project names a disabled zone it is not in yet.
	ReasonLandingZoneDisabled = "LandingZoneDisabled"
	// ReasonLandingZonesNotPermitted: the operator's identity lacks the
	// landing-zone rights, and the project names a zone or a quota.
	ReasonLandingZonesNotPermitted = "LandingZonesNotPermitted"
	// ReasonQuotaAboveMaximum: spec.quota exceeds the zone's maxQuota.
	ReasonQuotaAboveMaximum = "QuotaAboveMaximum"
	// ReasonResourceQuotaInvalid, ReasonLimitRangeInvalid and
	// ReasonNetworkPolicyInvalid: the API server refuses the object the
	// spec and the zone make, for example a spec.quota the schema accepts
	// but a ResourceQuota may not have.
	ReasonResourceQuotaInvalid = "ResourceQuotaInvalid"
	ReasonLimitRangeInvalid    = "LimitRangeInvalid"
	ReasonNetworkPolicyInvalid = "NetworkPolicyInvalid"

	// ReasonForeignObjectReplaced is the reason of the Warning Event when
	// an object with one of the operator's names in a project's own
	// namespace, not created by the operator, is deleted and replaced.
	ReasonForeignObjectReplaced = "ForeignObjectReplaced"
	// ReasonInvalidQuantity: the project's spec.quota or its zone holds a
	// stored value that is not a quantity; it is left out (the zone's own
	// value applies) until the object is fixed.
	ReasonInvalidQuantity = "InvalidQuantity"
	// ReasonLandingZoneRequired: the project left its landing zone without
	// naming another and there is no default zone; it keeps the baseline
	// of the zone it was in.
	ReasonLandingZoneRequired = "LandingZoneRequired"
)

// ReadyMessage is the Ready condition's message of a converged project.
func ReadyMessage(namespace, landingZone string) string {
	if landingZone == "" {
		return fmt.Sprintf("Namespace %s and its RoleBindings match the spec", namespace)
	}
	return fmt.Sprintf("Namespace %s, its RoleBindings and landing zone %s match the spec", namespace, landingZone)
}

// outcome collects what one pass found that keeps the project from being
// Ready without being an error worth retrying at once.
type outcome struct {
	namespace string
	// namespaceUID is the UID of the project's namespace once the pass
	// created or recognised it; empty keeps status.namespaceUID.
	namespaceUID types.UID
	// landingZone is the zone whose baseline the pass applied ("" for
	// none); nil keeps status.landingZone as it was, because the zone named
	// could not be applied.
	landingZone *string
	access      accessChanges
	problems    []problem
	// retry asks for another pass later: the blocking object is not one the
	// operator watches.
	retry bool
}

type problem struct{ reason, message string }

func (o *outcome) block(reason, format string, args ...any) {
	o.problems = append(o.problems, problem{reason: reason, message: fmt.Sprintf(format, args...)})
}

// blockedSince reports whether a problem with reason was found after the
// first n.
func (o *outcome) blockedSince(n int, reason string) bool {
	return slices.ContainsFunc(o.problems[n:], func(p problem) bool { return p.reason == reason })
}

// maxConditionMessage bounds the Ready condition's message far below the
// API's 32 KiB, however many problems a project has: 32 roles of 1,000
// users each could otherwise make a status the API server refuses.
const maxConditionMessage = 4096

// truncated cuts s to at most limit bytes, at a rune boundary, and says so.
func truncated(s string, limit int) string {
	const mark = " …(truncated)"
	if len(s) <= limit {
		return s
	}
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// setStatus writes the pass's result into project.Status.
func (r *MeshProjectReconciler) setStatus(project *meshv1.MeshProject, out *outcome, err error) {
	project.Status.Namespace = out.namespace
	if out.namespaceUID != "" {
		project.Status.NamespaceUID = out.namespaceUID
	}
	if out.landingZone != nil {
		project.Status.LandingZone = *out.landingZone
	}
	ready := metav1.Condition{Type: ConditionReady, ObservedGeneration: project.Generation}
	switch {
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, ReasonReconcileFailed, truncated(err.Error(), maxConditionMessage)
	case len(out.problems) > 0:
		messages := make([]string, len(out.problems))
		for i, p := range out.problems {
			messages[i] = p.message
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, out.problems[0].reason, joinCapped(messages, maxConditionMessage)
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, ReasonReconciled
		ready.Message = ReadyMessage(out.namespace, project.Status.LandingZone)
	}
	previous := meta.FindStatusCondition(project.Status.Conditions, ConditionReady)
	if ready.Status == metav1.ConditionFalse && (previous == nil || previous.Message != ready.Message) {
		r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, ready.Reason, "Reconcile", "%s", truncated(ready.Message, maxNoteLength))
	}
	meta.SetStatusCondition(&project.Status.Conditions, ready)
	if err == nil {
		project.Status.ObservedGeneration = project.Generation
	}
}

// notCreatedByOperator is in the message of every conflict with an object
// that has the operator's name but not its marks.
const notCreatedByOperator = "already exists and was not created by this operator"

// blockedMarkers are parts of the messages of the reasons that blockedBy
// also finds behind another reason.
var blockedMarkers = map[string]string{
	ReasonNamespaceConflict:      notCreatedByOperator,
	ReasonClusterRoleNotBindable: bindRefusedMessage,
}

// blockedBy reports whether the last pass left the project not Ready for
// reason: as the condition's reason (its first problem), or, for the
// reasons in blockedMarkers, as a later one. A pass that knows of a
// conflict or a refused bind looks before it writes; were only the first
// reason known, a project with another problem first would send a create
// bound to fail on every retry.
func blockedBy(project *meshv1.MeshProject, reason string) bool {
	ready := meta.FindStatusCondition(project.Status.Conditions, ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse {
		return false
	}
	marker, ok := blockedMarkers[reason]
	return ready.Reason == reason || (ok && strings.Contains(ready.Message, marker))
}

// patchStatus writes the status if it changed since before.
func (r *MeshProjectReconciler) patchStatus(ctx context.Context, project *meshv1.MeshProject, before *meshv1.MeshProjectStatus) error {
	if equality.Semantic.DeepEqual(before, &project.Status) {
		return nil
	}
	original := project.DeepCopy()
	original.Status = *before
	if err := r.Client.Status().Patch(ctx, project, client.MergeFrom(original)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}
