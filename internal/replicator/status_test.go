package replicator

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// passBuilder builds the outcome of a pass step by step, as
// reconcileNormal does.
type passBuilder struct{ out *outcome }

func aPass() *passBuilder { return &passBuilder{out: &outcome{namespace: "acme-shop"}} }

// ran runs the step of condition; problems are reason, message pairs.
func (b *passBuilder) ran(condition string, err error, problems ...string) *passBuilder {
	b.out.start(condition)
	for i := 0; i < len(problems); i += 2 {
		b.out.block(problems[i], "%s", problems[i+1])
	}
	b.out.finish(condition, err)
	return b
}

func (b *passBuilder) waited(condition, reason string) *passBuilder {
	b.out.wait(condition, reason)
	return b
}

// converged runs every step without a problem.
func (b *passBuilder) converged() *passBuilder {
	for _, st := range stepConditions {
		b.ran(st.condition, nil)
	}
	return b
}

// state is what a test compares of a condition.
type state struct {
	Type    string
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

func states(conditions []metav1.Condition) []state {
	out := make([]state, len(conditions))
	for i, c := range conditions {
		out[i] = state{c.Type, c.Status, c.Reason, c.Message}
	}
	return out
}

const (
	waitingForZone      = "waiting for the landing zone to be applicable (see condition LandingZoneReady)"
	waitingForNamespace = "waiting for the namespace to be usable (see condition NamespaceReady)"
)

// Each step's problem is its own condition's, Ready takes over the first
// problem's reason and all messages, and a step an earlier one held back
// is Unknown.
func TestSetStatusReportsAConditionPerStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		pass *passBuilder
		err  error
		want []state
	}{{
		name: "converged",
		pass: aPass().converged(),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved, ""},
			{meshv1.NamespaceReadyCondition, metav1.ConditionTrue, meshv1.ReasonNamespaceReconciled, ""},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionTrue, meshv1.ReasonRoleBindingsReconciled, ""},
			{meshv1.BaselineReadyCondition, metav1.ConditionTrue, meshv1.ReasonBaselineReconciled, ""},
			{meshv1.ReadyCondition, metav1.ConditionTrue, meshv1.ReasonReconciled, "Namespace acme-shop and its RoleBindings match the spec"},
		},
	}, {
		name: "unknown landing zone holds back a project without a namespace",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, nil, meshv1.ReasonLandingZoneNotFound, `landing zone "x" does not exist`).
			waited(meshv1.NamespaceReadyCondition, meshv1.ReasonWaitingForLandingZone).
			waited(meshv1.RoleBindingsReadyCondition, meshv1.ReasonWaitingForNamespace).
			waited(meshv1.BaselineReadyCondition, meshv1.ReasonWaitingForLandingZone),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionFalse, meshv1.ReasonLandingZoneNotFound, `landing zone "x" does not exist`},
			{meshv1.NamespaceReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone, waitingForZone},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace, waitingForNamespace},
			{meshv1.BaselineReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone, waitingForZone},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonLandingZoneNotFound, `landing zone "x" does not exist`},
		},
	}, {
		name: "namespace conflict",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, nil).
			ran(meshv1.NamespaceReadyCondition, nil, meshv1.ReasonNamespaceConflict, "namespace acme-shop is not ours").
			waited(meshv1.RoleBindingsReadyCondition, meshv1.ReasonWaitingForNamespace).
			waited(meshv1.BaselineReadyCondition, meshv1.ReasonWaitingForNamespace),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved, ""},
			{meshv1.NamespaceReadyCondition, metav1.ConditionFalse, meshv1.ReasonNamespaceConflict, "namespace acme-shop is not ours"},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace, waitingForNamespace},
			{meshv1.BaselineReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace, waitingForNamespace},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonNamespaceConflict, "namespace acme-shop is not ours"},
		},
	}, {
		name: "problems of two steps: Ready has the first's reason and both messages",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, nil, meshv1.ReasonInvalidQuantity, "pods: not a quantity").
			ran(meshv1.NamespaceReadyCondition, nil).
			ran(meshv1.RoleBindingsReadyCondition, nil, meshv1.ReasonUnknownRole, `role "x" is not mapped`).
			ran(meshv1.BaselineReadyCondition, nil),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionFalse, meshv1.ReasonInvalidQuantity, "pods: not a quantity"},
			{meshv1.NamespaceReadyCondition, metav1.ConditionTrue, meshv1.ReasonNamespaceReconciled, ""},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole, `role "x" is not mapped`},
			{meshv1.BaselineReadyCondition, metav1.ConditionTrue, meshv1.ReasonBaselineReconciled, ""},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonInvalidQuantity, `pods: not a quantity; role "x" is not mapped`},
		},
	}, {
		name: "a refused bind outranks an earlier problem of its step, not Ready's first reason",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, nil).ran(meshv1.NamespaceReadyCondition, nil).
			ran(meshv1.RoleBindingsReadyCondition, nil,
				meshv1.ReasonUnknownRole, `role "x" is not mapped`,
				meshv1.ReasonClusterRoleNotBindable, `the operator may not bind ClusterRole "y"`,
				meshv1.ReasonClusterRoleNotFound, `ClusterRole "z" does not exist`).
			ran(meshv1.BaselineReadyCondition, nil, meshv1.ReasonQuotaAboveMaximum, "pods too high"),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved, ""},
			{meshv1.NamespaceReadyCondition, metav1.ConditionTrue, meshv1.ReasonNamespaceReconciled, ""},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonClusterRoleNotBindable,
				`role "x" is not mapped; the operator may not bind ClusterRole "y"; ClusterRole "z" does not exist`},
			{meshv1.BaselineReadyCondition, metav1.ConditionFalse, meshv1.ReasonQuotaAboveMaximum, "pods too high"},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole,
				`role "x" is not mapped; the operator may not bind ClusterRole "y"; ClusterRole "z" does not exist; pods too high`},
		},
	}, {
		name: "a transient error of one step",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, nil).ran(meshv1.NamespaceReadyCondition, nil).
			ran(meshv1.RoleBindingsReadyCondition, errors.New("listing RoleBindings: timeout")).
			ran(meshv1.BaselineReadyCondition, nil),
		err: errors.New("role bindings: listing RoleBindings: timeout"),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved, ""},
			{meshv1.NamespaceReadyCondition, metav1.ConditionTrue, meshv1.ReasonNamespaceReconciled, ""},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonReconcileFailed, "listing RoleBindings: timeout"},
			{meshv1.BaselineReadyCondition, metav1.ConditionTrue, meshv1.ReasonBaselineReconciled, ""},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonReconcileFailed, "role bindings: listing RoleBindings: timeout"},
		},
	}, {
		name: "a zone that cannot be read stops the pass",
		pass: aPass().ran(meshv1.LandingZoneReadyCondition, errors.New("reading MeshLandingZone z: timeout")),
		err:  errors.New("landing zone: reading MeshLandingZone z: timeout"),
		want: []state{
			{meshv1.LandingZoneReadyCondition, metav1.ConditionFalse, meshv1.ReasonReconcileFailed, "reading MeshLandingZone z: timeout"},
			{meshv1.NamespaceReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone, waitingForZone},
			{meshv1.RoleBindingsReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone, waitingForZone},
			{meshv1.BaselineReadyCondition, metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone, waitingForZone},
			{meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonReconcileFailed, "landing zone: reading MeshLandingZone z: timeout"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := project(nil)
			p.Generation = 3
			(&MeshProjectReconciler{Recorder: events.NewFakeRecorder(10)}).setStatus(p, tc.pass.out, tc.err)
			if diff := cmp.Diff(tc.want, states(p.Status.Conditions)); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			for _, c := range p.Status.Conditions {
				if c.ObservedGeneration != 3 {
					t.Errorf("%s: observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
		})
	}
}

// blockedBy decides from the step's condition type and reason alone.
func TestBlockedByDecidesFromTypeAndReason(t *testing.T) {
	condition := func(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
	}
	for _, tc := range []struct {
		name       string
		conditions []metav1.Condition
		condition  string
		reason     string
		want       bool
	}{{
		name:      "no status yet",
		condition: meshv1.NamespaceReadyCondition,
		reason:    meshv1.ReasonNamespaceConflict,
		want:      false,
	}, {
		name: "conflict behind an earlier problem of Ready",
		conditions: []metav1.Condition{
			condition(meshv1.NamespaceReadyCondition, metav1.ConditionFalse, meshv1.ReasonNamespaceConflict, "namespace belongs to MeshProject b"),
			condition(meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonInvalidQuantity, "pods: not a quantity; namespace belongs to MeshProject b"),
		},
		condition: meshv1.NamespaceReadyCondition,
		reason:    meshv1.ReasonNamespaceConflict,
		want:      true,
	}, {
		name: "refused bind",
		conditions: []metav1.Condition{
			condition(meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonClusterRoleNotBindable, "x"),
			condition(meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole, "x"),
		},
		condition: meshv1.RoleBindingsReadyCondition,
		reason:    meshv1.ReasonClusterRoleNotBindable,
		want:      true,
	}, {
		name: "the old markers in a message of another reason count for nothing",
		conditions: []metav1.Condition{
			condition(meshv1.NamespaceReadyCondition, metav1.ConditionFalse, meshv1.ReasonNamespaceTerminating,
				"namespace acme-shop already exists and was not created by this operator"),
			condition(meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole,
				"the operator may not bind ClusterRole \"x\""),
			condition(meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole,
				"already exists and was not created by this operator; the operator may not bind ClusterRole"),
		},
		condition: meshv1.NamespaceReadyCondition,
		reason:    meshv1.ReasonNamespaceConflict,
		want:      false,
	}, {
		name: "the reason on Ready alone is not the step's",
		conditions: []metav1.Condition{
			condition(meshv1.ReadyCondition, metav1.ConditionFalse, meshv1.ReasonClusterRoleNotBindable, "x"),
		},
		condition: meshv1.RoleBindingsReadyCondition,
		reason:    meshv1.ReasonClusterRoleNotBindable,
		want:      false,
	}, {
		name: "resolved",
		conditions: []metav1.Condition{
			condition(meshv1.NamespaceReadyCondition, metav1.ConditionTrue, meshv1.ReasonNamespaceConflict, ""),
		},
		condition: meshv1.NamespaceReadyCondition,
		reason:    meshv1.ReasonNamespaceConflict,
		want:      false,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := project(nil)
			p.Status.Conditions = tc.conditions
			if got := blockedBy(p, tc.condition, tc.reason); got != tc.want {
				t.Errorf("blockedBy(%s, %s) = %v, want %v", tc.condition, tc.reason, got, tc.want)
			}
		})
	}
	// The refused-bind case also holds for the other reason's marker text.
	p := project(nil)
	p.Status.Conditions = []metav1.Condition{condition(meshv1.RoleBindingsReadyCondition, metav1.ConditionFalse, meshv1.ReasonUnknownRole,
		"the operator may not bind ClusterRole \"x\"")}
	if blockedBy(p, meshv1.RoleBindingsReadyCondition, meshv1.ReasonClusterRoleNotBindable) {
		t.Error("blockedBy read the refused-bind text in a message of reason UnknownRole")
	}
}

// However many problems a pass finds, the Ready message stays within the
// bound (so the status stays valid) and the Event's note within its own.
func TestReadyMessageIsBounded(t *testing.T) {
	p := project(nil)
	out := &outcome{}
	out.start(meshv1.RoleBindingsReadyCondition)
	for i := range 32 * 1000 {
		out.block(meshv1.ReasonUnknownRole, "role %q of user %d is not mapped ✓", strings.Repeat("r", 63), i)
	}
	recorder := events.NewFakeRecorder(1)
	(&MeshProjectReconciler{Recorder: recorder}).setStatus(p, out, nil)

	ready := meta.FindStatusCondition(p.Status.Conditions, meshv1.ReadyCondition)
	if ready == nil || ready.Reason != meshv1.ReasonUnknownRole {
		t.Fatalf("Ready = %+v, want reason %s", ready, meshv1.ReasonUnknownRole)
	}
	if len(ready.Message) > maxConditionMessage || !utf8.ValidString(ready.Message) {
		t.Errorf("message of %d bytes (valid UTF-8: %v), want at most %d", len(ready.Message), utf8.ValidString(ready.Message), maxConditionMessage)
	}
	step := meta.FindStatusCondition(p.Status.Conditions, meshv1.RoleBindingsReadyCondition)
	if step == nil || len(step.Message) > maxConditionMessage || step.Reason != meshv1.ReasonUnknownRole {
		t.Errorf("RoleBindingsReady = %+v, want reason %s and a message within %d bytes", step, meshv1.ReasonUnknownRole, maxConditionMessage)
	}
	if !regexp.MustCompile(`; and [0-9]+ more$`).MatchString(ready.Message) {
		t.Errorf("message does not say how many problems were left out: …%s", ready.Message[len(ready.Message)-60:])
	}
	if note := <-recorder.Events; len(note) > maxNoteLength+100 {
		t.Errorf("event of %d bytes, want the note within %d", len(note), maxNoteLength)
	}
}

func TestJoinCappedCutsOneProblemTooLongAlone(t *testing.T) {
	long := strings.Repeat("x", 10000)
	if got := joinCapped([]string{long}, 100); len(got) > 100 || !strings.HasPrefix(got, "xxx") {
		t.Errorf("joinCapped(one long) = %q, want its start within 100 bytes", got)
	}
	if got := joinCapped([]string{long, "b"}, 100); len(got) > 100 || !strings.HasSuffix(got, "; and 1 more") {
		t.Errorf("joinCapped(long, b) = %q, want its start and how many more", got)
	}
}

func TestTruncated(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
	}{{"short", 100}, {strings.Repeat("é", 100), 51}, {strings.Repeat("x", 1000), 40}} {
		got := truncated(tc.in, tc.limit)
		if len(got) > tc.limit || !utf8.ValidString(got) {
			t.Errorf("truncated(%d bytes, %d) = %q: %d bytes", len(tc.in), tc.limit, got, len(got))
		}
		if len(tc.in) <= tc.limit && got != tc.in {
			t.Errorf("truncated(%q) = %q, want it unchanged", tc.in, got)
		}
	}
}
