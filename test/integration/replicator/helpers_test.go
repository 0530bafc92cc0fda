package replicator_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

var projectSeq atomic.Int32

// projectBuilder builds MeshProjects with identifiers unique to the run, so
// that specs never share namespaces. framework.ProjectBuilder builds them;
// the lower-case methods chain to create.
type projectBuilder struct{ *framework.ProjectBuilder }

func aProject() *projectBuilder {
	n := projectSeq.Add(1)
	customer := fmt.Sprintf("cust%d%d", n, time.Now().UnixNano()%100000)
	return &projectBuilder{framework.Project(customer, fmt.Sprintf("proj%d", n))}
}

func (b *projectBuilder) named(name string) *projectBuilder { b.Named(name); return b }

func (b *projectBuilder) identifiers(customer, project string) *projectBuilder {
	b.Identifiers(customer, project)
	return b
}

func (b *projectBuilder) users(role string, users ...string) *projectBuilder {
	b.Users(role, users...)
	return b
}

func (b *projectBuilder) groups(role string, groups ...string) *projectBuilder {
	b.Groups(role, groups...)
	return b
}

func (b *projectBuilder) tag(k, v string) *projectBuilder { b.Tag(k, v); return b }

func (b *projectBuilder) policy(p meshv1.DeletionPolicy) *projectBuilder { b.Policy(p); return b }

func (b *projectBuilder) build() *meshv1.MeshProject { return b.Build() }

// create creates the project and returns it.
func (b *projectBuilder) create() *meshv1.MeshProject {
	p := b.build()
	ExpectWithOffset(1, fw.Client.Create(ctx, p)).To(Succeed())
	return p
}

// update re-reads p, applies mutate and updates it, retrying on conflicts.
func update(p *meshv1.MeshProject, mutate func(*meshv1.MeshProject)) {
	GinkgoHelper()
	updateObject(p, mutate)
}

// updateObject re-reads obj, applies mutate and updates it, retrying on
// conflicts.
func updateObject[T client.Object](obj T, mutate func(T)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		mutate(obj)
		g.Expect(fw.Client.Update(ctx, obj)).To(Succeed())
	}).Should(Succeed())
}

// readyCondition returns p's Ready condition once the operator has observed
// p's current generation.
func readyCondition(g Gomega, p *meshv1.MeshProject) *metav1.Condition {
	current := &meshv1.MeshProject{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), current)).To(Succeed())
	cond := meta.FindStatusCondition(current.Status.Conditions, meshv1.ReadyCondition)
	g.Expect(cond).NotTo(BeNil(), "no Ready condition yet")
	g.Expect(cond.ObservedGeneration).To(Equal(current.Generation), "Ready condition is for an older generation")
	return cond
}

// expectReady waits until p is Ready for its current generation.
func expectReady(p *meshv1.MeshProject) {
	GinkgoHelper()
	expectReadyWithin(p, framework.Timeout)
}

func expectReadyWithin(p *meshv1.MeshProject, within time.Duration) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		cond := readyCondition(g, p)
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s: %s", cond.Reason, cond.Message)
		current := &meshv1.MeshProject{}
		g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), current)).To(Succeed())
		g.Expect(current.Status.ObservedGeneration).To(Equal(current.Generation))
		g.Expect(current.Status.Namespace).To(Equal(p.NamespaceName()))
	}, within).Should(Succeed())
}

// expectNotReady waits until p's Ready condition is False with reason, and
// returns its message.
func expectNotReady(p *meshv1.MeshProject, reason string) string {
	var message string
	EventuallyWithOffset(1, func(g Gomega) {
		cond := readyCondition(g, p)
		g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cond.Reason).To(Equal(reason), cond.Message)
		message = cond.Message
	}).Should(Succeed())
	return message
}

func getNamespace(g Gomega, name string) *corev1.Namespace {
	ns := &corev1.Namespace{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
	return ns
}

func getRoleBinding(g Gomega, p *meshv1.MeshProject, role string) *rbacv1.RoleBinding {
	rb := &rbacv1.RoleBinding{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName(role)}, rb)).To(Succeed())
	return rb
}

func user(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func group(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

// canCreateDeployments asks the API server whether user (with groups) may
// create Deployments in namespace.
func canCreateDeployments(g Gomega, namespace, user string, groups ...string) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: append([]string{"system:authenticated"}, groups...),
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: "create", Group: "apps", Resource: "deployments",
		},
	}}
	g.Expect(fw.Client.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

// eventNotes returns the notes of the events with reason about p.
func eventNotes(g Gomega, p *meshv1.MeshProject, reason string) []string {
	var list eventsv1.EventList
	g.Expect(fw.Client.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "MeshProject" && e.Regarding.Name == p.Name && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	slices.Sort(notes)
	return notes
}

// projectsGauge is meshstack_meshprojects{ready, reason}; 0 when absent.
func projectsGauge(g Gomega, ready, reason string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "meshstack_meshprojects" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["ready"] == ready && labels["reason"] == reason {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// stepState is what a spec expects of one condition: its status and reason.
type stepState struct {
	status metav1.ConditionStatus
	reason string
}

// allStepsTrue are the conditions of a converged project.
var allStepsTrue = map[string]stepState{
	meshv1.LandingZoneReadyCondition:  {metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved},
	meshv1.NamespaceReadyCondition:    {metav1.ConditionTrue, meshv1.ReasonNamespaceReconciled},
	meshv1.RoleBindingsReadyCondition: {metav1.ConditionTrue, meshv1.ReasonRoleBindingsReconciled},
	meshv1.BaselineReadyCondition:     {metav1.ConditionTrue, meshv1.ReasonBaselineReconciled},
	meshv1.ReadyCondition:             {metav1.ConditionTrue, meshv1.ReasonReconciled},
}

// expectConditions waits until p's conditions of the types in want have
// the status and reason wanted, for p's current generation.
func expectConditions(p *meshv1.MeshProject, want map[string]stepState) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		current := &meshv1.MeshProject{}
		g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), current)).To(Succeed())
		for typ, state := range want {
			cond := meta.FindStatusCondition(current.Status.Conditions, typ)
			g.Expect(cond).NotTo(BeNil(), "no %s condition", typ)
			g.Expect(stepState{cond.Status, cond.Reason}).To(Equal(state), "%s: %s", typ, cond.Message)
			g.Expect(cond.ObservedGeneration).To(Equal(current.Generation), "%s is for an older generation", typ)
		}
	}).Should(Succeed())
}
