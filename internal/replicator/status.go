package replicator

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
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
	// step is the condition type of the step running: block files its
	// problems under it.
	step string
	// ran holds the steps that ran, by condition type, with their errors;
	// waiting the ones an earlier step held back, with the reason.
	ran     map[string][]error
	waiting map[string]string
	// retry asks for another pass later: the blocking object is not one the
	// operator watches.
	retry bool
}

// problem is one thing a step found that keeps the project from being
// Ready; condition is the step's condition type.
type problem struct{ condition, reason, message string }

func (o *outcome) block(reason, format string, args ...any) {
	o.problems = append(o.problems, problem{condition: o.step, reason: reason, message: fmt.Sprintf(format, args...)})
}

// start files what follows under the step of condition.
func (o *outcome) start(condition string) {
	o.step = condition
	if o.ran == nil {
		o.ran = map[string][]error{}
	}
	if _, ok := o.ran[condition]; !ok {
		o.ran[condition] = nil
	}
}

// finish records a step's error (nil for none).
func (o *outcome) finish(condition string, err error) {
	if err != nil {
		o.ran[condition] = append(o.ran[condition], err)
	}
}

// wait records that an earlier step held back the step of condition.
func (o *outcome) wait(condition, reason string) {
	if o.waiting == nil {
		o.waiting = map[string]string{}
	}
	o.waiting[condition] = reason
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

// stepConditions are the condition types of the steps of a pass, in the
// order they run, with the reason each has when its step converged.
var stepConditions = []struct{ condition, converged string }{
	{meshv1.LandingZoneReadyCondition, meshv1.ReasonLandingZoneResolved},
	{meshv1.NamespaceReadyCondition, meshv1.ReasonNamespaceReconciled},
	{meshv1.RoleBindingsReadyCondition, meshv1.ReasonRoleBindingsReconciled},
	{meshv1.BaselineReadyCondition, meshv1.ReasonBaselineReconciled},
}

// actedOn are the problem reasons the next pass decides from (see
// blockedBy). They outrank the other problems of their step as its
// condition's reason, so that an earlier problem of the same step cannot
// hide them.
var actedOn = []string{meshv1.ReasonNamespaceConflict, meshv1.ReasonClusterRoleNotBindable}

// waitingMessages say, for a person, what a waiting step waits for.
var waitingMessages = map[string]string{
	meshv1.ReasonWaitingForLandingZone: "waiting for the landing zone to be applicable (see condition " + meshv1.LandingZoneReadyCondition + ")",
	meshv1.ReasonWaitingForNamespace:   "waiting for the namespace to be usable (see condition " + meshv1.NamespaceReadyCondition + ")",
}

// stepCondition is the condition of the step of condition after a pass:
// Unknown when it waited, False with its problems and errors, else True.
func stepCondition(out *outcome, condition, converged string, generation int64) metav1.Condition {
	c := metav1.Condition{Type: condition, ObservedGeneration: generation}
	errs, ran := out.ran[condition]
	if !ran {
		reason, ok := out.waiting[condition]
		if !ok {
			// A pass that stopped before the step reports it as waiting
			// for the step that holds everything: the landing zone.
			reason = meshv1.ReasonWaitingForLandingZone
		}
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, reason, waitingMessages[reason]
		return c
	}
	var messages []string
	for _, p := range out.problems {
		if p.condition != condition {
			continue
		}
		if c.Reason == "" || slices.Contains(actedOn, p.reason) && !slices.Contains(actedOn, c.Reason) {
			c.Reason = p.reason
		}
		messages = append(messages, p.message)
	}
	for _, err := range errs {
		messages = append(messages, err.Error())
	}
	switch {
	case len(messages) == 0:
		c.Status, c.Reason = metav1.ConditionTrue, converged
	case c.Reason == "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, meshv1.ReasonReconcileFailed, joinCapped(messages, maxConditionMessage)
	default:
		c.Status, c.Message = metav1.ConditionFalse, joinCapped(messages, maxConditionMessage)
	}
	return c
}

// setStatus writes the pass's result into project.Status: a condition per
// step, and Ready, which summarises them in one line.
func (r *MeshProjectReconciler) setStatus(project *meshv1.MeshProject, out *outcome, err error) {
	project.Status.Namespace = out.namespace
	if out.namespaceUID != "" {
		project.Status.NamespaceUID = out.namespaceUID
	}
	if out.landingZone != nil {
		project.Status.LandingZone = *out.landingZone
	}
	var notReady *metav1.Condition
	for _, step := range stepConditions {
		c := stepCondition(out, step.condition, step.converged, project.Generation)
		if notReady == nil && c.Status != metav1.ConditionTrue {
			notReady = &c
		}
		meta.SetStatusCondition(&project.Status.Conditions, c)
	}
	ready := metav1.Condition{Type: meshv1.ReadyCondition, ObservedGeneration: project.Generation}
	switch {
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, meshv1.ReasonReconcileFailed, truncated(err.Error(), maxConditionMessage)
	case len(out.problems) > 0:
		// The first problem's reason, as before there were step
		// conditions, and all problems in one line.
		messages := make([]string, len(out.problems))
		for i, p := range out.problems {
			messages[i] = p.message
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, out.problems[0].reason, joinCapped(messages, maxConditionMessage)
	case notReady != nil:
		// No step holds back another without a problem or an error; should
		// one ever, Ready still does not claim what a step does not.
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, notReady.Reason, notReady.Message
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, meshv1.ReasonReconciled
		ready.Message = ReadyMessage(out.namespace, project.Status.LandingZone)
	}
	previous := meta.FindStatusCondition(project.Status.Conditions, meshv1.ReadyCondition)
	if ready.Status == metav1.ConditionFalse && (previous == nil || previous.Message != ready.Message) {
		r.Recorder.Eventf(project, nil, corev1.EventTypeWarning, ready.Reason, "Reconcile", "%s", truncated(ready.Message, maxNoteLength))
	}
	meta.SetStatusCondition(&project.Status.Conditions, ready)
	if err == nil {
		project.Status.ObservedGeneration = project.Generation
	}
}

// blockedBy reports whether the last pass left the step of condition False
// for reason. A pass that knows of a conflict or a refused bind looks
// before it writes, rather than send a create bound to fail on every
// retry; the step's condition keeps these reasons even when Ready shows
// another, earlier problem (see actedOn).
func blockedBy(project *meshv1.MeshProject, condition, reason string) bool {
	c := meta.FindStatusCondition(project.Status.Conditions, condition)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason
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
