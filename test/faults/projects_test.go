package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
)

// newProject is a MeshProject with the three default roles: admin for
// alice, edit for the project's developers group, view for bob.
func newProject(customer, project string) *meshv1.MeshProject {
	name := customer + "-" + project
	return &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1.MeshProjectSpec{
			CustomerIdentifier: meshv1.Identifier(customer),
			ProjectIdentifier:  meshv1.Identifier(project),
			RoleBindings: []meshv1.ProjectRoleBinding{
				{Role: "admin", Users: []meshv1.SubjectName{"alice"}},
				{Role: "edit", Groups: []meshv1.SubjectName{meshv1.SubjectName(name + "-developers")}},
				{Role: "view", Users: []meshv1.SubjectName{"bob"}},
			},
		},
	}
}

// create creates the projects, retrying while the API server refuses (as
// right after it started, see TestAPIServerRestart).
func create(g Gomega, projects ...*meshv1.MeshProject) {
	for _, p := range projects {
		g.Eventually(func() error {
			return client.IgnoreAlreadyExists(fw.Client.Create(context.Background(), p.DeepCopy()))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	}
}

// addViewer adds a user to the project's view role, a change of its spec.
func addViewer(g Gomega, name, user string) {
	g.Eventually(func() error {
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
	}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
}

// converged reports whether the project is Ready for its current
// generation.
func converged(p *meshv1.MeshProject) bool {
	cond := meta.FindStatusCondition(p.Status.Conditions, meshv1.ReadyCondition)
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == p.Generation &&
		p.Status.ObservedGeneration == p.Generation
}

// convergedCount counts the projects whose name starts with prefix, and
// those of them that have converged.
func convergedCount(g Gomega, prefix string) (all, ready int) {
	var list meshv1.MeshProjectList
	g.Expect(fw.Client.List(context.Background(), &list)).To(Succeed())
	for i := range list.Items {
		if strings.HasPrefix(list.Items[i].Name, prefix) {
			all++
			if converged(&list.Items[i]) {
				ready++
			}
		}
	}
	return all, ready
}

// waitConverged waits until every named project is Ready for its current
// generation and returns how long that took from since.
func waitConverged(g Gomega, since time.Time, within time.Duration, names ...string) time.Duration {
	g.Eventually(func(g Gomega) {
		for _, name := range names {
			var p meshv1.MeshProject
			g.Expect(fw.Client.Get(context.Background(), client.ObjectKey{Name: name}, &p)).To(Succeed())
			g.Expect(converged(&p)).To(BeTrue(), "%s: %v", name, p.Status.Conditions)
		}
	}, within, 50*time.Millisecond).Should(Succeed(), "not converged %s after %s", names, within)
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
func expectNoOrphansOrDuplicates(g Gomega) {
	ctx := context.Background()
	var projects meshv1.MeshProjectList
	g.Expect(fw.Client.List(ctx, &projects)).To(Succeed())
	byNamespace := map[string]*meshv1.MeshProject{}
	for i := range projects.Items {
		p := &projects.Items[i]
		byNamespace[p.NamespaceName()] = p
	}

	var namespaces corev1.NamespaceList
	g.Expect(fw.Client.List(ctx, &namespaces, managedLabel)).To(Succeed())
	seen := sets.New[string]()
	for _, ns := range namespaces.Items {
		p, ok := byNamespace[ns.Name]
		g.Expect(ok).To(BeTrue(), "namespace %s belongs to no MeshProject", ns.Name)
		g.Expect(ns.Annotations[meshv1.AnnotationMeshProject]).To(Equal(p.Name), "namespace %s", ns.Name)
		seen.Insert(ns.Name)
	}
	for ns, p := range byNamespace {
		if p.DeletionTimestamp == nil {
			g.Expect(seen.Has(ns)).To(BeTrue(), "MeshProject %s has no namespace", p.Name)
		}
	}

	var bindings rbacv1.RoleBindingList
	g.Expect(fw.Client.List(ctx, &bindings, managedLabel)).To(Succeed())
	got := map[string][]string{}
	for _, rb := range bindings.Items {
		p, ok := byNamespace[rb.Namespace]
		g.Expect(ok).To(BeTrue(), "RoleBinding %s/%s is in no MeshProject's namespace", rb.Namespace, rb.Name)
		g.Expect(rb.Annotations[meshv1.AnnotationMeshProject]).To(Equal(p.Name), "RoleBinding %s/%s", rb.Namespace, rb.Name)
		got[p.Name] = append(got[p.Name], rb.Name)
		role := rb.Labels[meshv1.LabelRole]
		want := wantSubjects(p, role)
		g.Expect(want).NotTo(BeNil(), "RoleBinding %s/%s is for role %q, which %s does not have", rb.Namespace, rb.Name, role, p.Name)
		g.Expect(rb.Name).To(Equal(replicator.RoleBindingName(role)))
		g.Expect(rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}))
		g.Expect(rb.Subjects).To(ConsistOf(want), "RoleBinding %s/%s", rb.Namespace, rb.Name)
	}
	for _, p := range projects.Items {
		var want []string
		for _, b := range p.Spec.RoleBindings {
			want = append(want, replicator.RoleBindingName(b.Role))
		}
		slices.Sort(want)
		have := got[p.Name]
		slices.Sort(have)
		g.Expect(have).To(Equal(want), "RoleBindings of %s", p.Name)
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
