package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// newProject is a MeshProject with the three default roles: admin for
// alice, edit for the project's developers group, view for bob.
func newProject(customer, project string) *meshv1.MeshProject {
	return framework.Project(customer, project).Users("admin", "alice").
		Groups("edit", customer+"-"+project+"-developers").Users("view", "bob").Build()
}

// create creates the projects, retrying while the API server refuses (as
// right after it started, see restart_test.go).
func create(projects ...*meshv1.MeshProject) {
	GinkgoHelper()
	for _, p := range projects {
		Eventually(func() error {
			return client.IgnoreAlreadyExists(fw.Client.Create(context.Background(), p.DeepCopy()))
		}).Should(Succeed())
	}
}

// addViewer adds a user to the project's view role, a change of its spec.
func addViewer(name, user string) {
	GinkgoHelper()
	Eventually(func() error {
		var p meshv1.MeshProject
		if err := fw.Client.Get(context.Background(), client.ObjectKey{Name: name}, &p); err != nil {
			return err
		}
		for i := range p.Spec.RoleBindings {
			if p.Spec.RoleBindings[i].Role == "view" {
				p.Spec.RoleBindings[i].Users = append(p.Spec.RoleBindings[i].Users, meshv1.SubjectName(user))
			}
		}
		return fw.Client.Update(context.Background(), &p)
	}).Should(Succeed())
}

// converged reports whether the project is Ready for its current
// generation.
func converged(p *meshv1.MeshProject) bool {
	cond := meta.FindStatusCondition(p.Status.Conditions, meshv1.ReadyCondition)
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == p.Generation &&
		p.Status.ObservedGeneration == p.Generation
}

// convergedCount counts the projects whose name starts with prefix that
// have converged.
func convergedCount(g Gomega, prefix string) (ready int) {
	var list meshv1.MeshProjectList
	g.Expect(fw.Client.List(context.Background(), &list)).To(Succeed())
	for i := range list.Items {
		if strings.HasPrefix(list.Items[i].Name, prefix) && converged(&list.Items[i]) {
			ready++
		}
	}
	return ready
}

// waitConverged waits until every named project is Ready for its current
// generation and returns how long that took from since.
func waitConverged(since time.Time, within time.Duration, names ...string) time.Duration {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for _, name := range names {
			var p meshv1.MeshProject
			g.Expect(fw.Client.Get(context.Background(), client.ObjectKey{Name: name}, &p)).To(Succeed())
			g.Expect(converged(&p)).To(BeTrue(), "%s: %v", name, p.Status.Conditions)
		}
	}, within).Should(Succeed(), "not converged %s after %s", names, within)
	return time.Since(since)
}

// managedLabel selects what the operator manages.
var managedLabel = client.MatchingLabels{meshv1.LabelManagedBy: "meshstack-operator"}

// customerLabel selects the projects and namespaces of one customer.
func customerLabel(customer string) client.MatchingLabels {
	return client.MatchingLabels{meshv1.LabelCustomer: customer}
}

// expectNoOrphansOrDuplicates checks every namespace and RoleBinding the
// operator manages, in the whole cluster: each belongs to an existing
// MeshProject (its namespace, its annotation), each project has exactly its
// namespace and exactly one binding per role, to that role's ClusterRole and
// with exactly the spec's subjects — nothing left over from an interrupted
// pass (no bridge binding, no stale binding, no second namespace).
func expectNoOrphansOrDuplicates() {
	GinkgoHelper()
	ctx := context.Background()
	var projects meshv1.MeshProjectList
	Expect(fw.Client.List(ctx, &projects)).To(Succeed())
	byNamespace := map[string]*meshv1.MeshProject{}
	for i := range projects.Items {
		p := &projects.Items[i]
		byNamespace[p.NamespaceName()] = p
	}

	var namespaces corev1.NamespaceList
	Expect(fw.Client.List(ctx, &namespaces, managedLabel)).To(Succeed())
	seen := sets.New[string]()
	for _, ns := range namespaces.Items {
		p, ok := byNamespace[ns.Name]
		Expect(ok).To(BeTrue(), "namespace %s belongs to no MeshProject", ns.Name)
		Expect(ns.Annotations[meshv1.AnnotationMeshProject]).To(Equal(p.Name), "namespace %s", ns.Name)
		seen.Insert(ns.Name)
	}
	for ns, p := range byNamespace {
		if p.DeletionTimestamp == nil {
			Expect(seen.Has(ns)).To(BeTrue(), "MeshProject %s has no namespace", p.Name)
		}
	}

	var bindings rbacv1.RoleBindingList
	Expect(fw.Client.List(ctx, &bindings, managedLabel)).To(Succeed())
	got := map[string][]string{}
	for _, rb := range bindings.Items {
		p, ok := byNamespace[rb.Namespace]
		Expect(ok).To(BeTrue(), "RoleBinding %s/%s is in no MeshProject's namespace", rb.Namespace, rb.Name)
		Expect(rb.Annotations[meshv1.AnnotationMeshProject]).To(Equal(p.Name), "RoleBinding %s/%s", rb.Namespace, rb.Name)
		got[p.Name] = append(got[p.Name], rb.Name)
		role := rb.Labels[meshv1.LabelRole]
		want := wantSubjects(p, role)
		Expect(want).NotTo(BeNil(), "RoleBinding %s/%s is for role %q, which %s does not have", rb.Namespace, rb.Name, role, p.Name)
		Expect(rb.Name).To(Equal(replicator.RoleBindingName(role)))
		Expect(rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}))
		Expect(rb.Subjects).To(ConsistOf(want), "RoleBinding %s/%s", rb.Namespace, rb.Name)
	}
	for _, p := range projects.Items {
		var want []string
		for _, b := range p.Spec.RoleBindings {
			want = append(want, replicator.RoleBindingName(b.Role))
		}
		slices.Sort(want)
		have := got[p.Name]
		slices.Sort(have)
		Expect(have).To(Equal(want), "RoleBindings of %s", p.Name)
	}
}

// wantSubjects are the subjects the project's role should bind, nil when
// the project has no such role.
func wantSubjects(p *meshv1.MeshProject, role string) []rbacv1.Subject {
	for _, b := range p.Spec.RoleBindings {
		if b.Role != role {
			continue
		}
		subjects := []rbacv1.Subject{}
		for _, u := range b.Users {
			subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:" + string(u)})
		}
		for _, gr := range b.Groups {
			subjects = append(subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: string(gr)})
		}
		return subjects
	}
	return nil
}

// projectNames are <customer>-p000 … for n projects.
func projectNames(customer string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-p%03d", customer, i)
	}
	return names
}
