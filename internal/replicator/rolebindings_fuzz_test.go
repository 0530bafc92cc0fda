package replicator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// fuzzProject builds a MeshProject from fuzzed lists: roles are
// comma-separated (made unique, as the API's listMapKey makes them), users
// and groups newline-separated, dealt out over the roles in turn. Subject
// names are taken as they come: the schema refuses empty and "system:"
// names, but the reconciler must not rely on it (a MeshProject stored
// before a rule was added keeps its old spec).
func fuzzProject(roles, users, groups string) *meshv1.MeshProject {
	p := &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-shop"},
		Spec:       meshv1.MeshProjectSpec{CustomerIdentifier: "acme", ProjectIdentifier: "shop"},
	}
	var names []string
	for _, role := range strings.Split(roles, ",") {
		if !slices.Contains(names, role) {
			names = append(names, role)
			p.Spec.RoleBindings = append(p.Spec.RoleBindings, meshv1.ProjectRoleBinding{Role: role})
		}
	}
	deal := func(list string, add func(b *meshv1.ProjectRoleBinding, n meshv1.SubjectName)) {
		if list == "" {
			return
		}
		for i, n := range strings.Split(list, "\n") {
			add(&p.Spec.RoleBindings[i%len(p.Spec.RoleBindings)], meshv1.SubjectName(n))
		}
	}
	deal(users, func(b *meshv1.ProjectRoleBinding, n meshv1.SubjectName) { b.Users = append(b.Users, n) })
	deal(groups, func(b *meshv1.ProjectRoleBinding, n meshv1.SubjectName) { b.Groups = append(b.Groups, n) })
	return p
}

// fuzzMapping reads "role=cr+cr,role=cr" as a landing zone's roleMappings
// would give it: ClusterRoles that the zone's schema accepts, unique per role.
func fuzzMapping(s string) roleMapping {
	m := roleMapping{source: "fuzz", roles: map[string][]string{}}
	for _, pair := range strings.Split(s, ",") {
		role, crs, _ := strings.Cut(pair, "=")
		if _, dup := m.roles[role]; dup {
			continue
		}
		var list []string
		for _, cr := range strings.Split(crs, "+") {
			if len(content.IsPathSegmentName(cr)) == 0 && cr != "" && len(cr) <= 253 && !slices.Contains(list, cr) {
				list = append(list, cr)
			}
		}
		if len(list) > 0 {
			m.roles[role] = list
		}
	}
	return m
}

// FuzzDesiredRoleBindings checks what the reconciler wants to bind, for
// any spec, mapping and OIDC prefixes: the same input gives the same
// bindings whatever the order of users and groups; no subject is named
// "system:..." (Kubernetes' own users and groups: binding one could grant
// a role to every ServiceAccount or node, or to system:masters); every User
// subject carries the username prefix and every Group subject the groups
// prefix; no name is dropped but those refused; and no two bindings of a
// project share a name.
func FuzzDesiredRoleBindings(f *testing.F) {
	type seed struct{ userPrefix, groupPrefix, roles, users, groups, mapping string }
	for _, s := range []seed{
		{"mesh:", "", "admin,view", "alice\nbob\nzoe", "acme-devs", DefaultRoleMapping},
		{"mesh:", "", "admin", "system:masters", "system:masters\nsystem:authenticated", DefaultRoleMapping},
		{"mesh:", "", "admin", "", "system:serviceaccounts\nsystem:nodes", "admin=admin"},
		{"sys", "sys", "admin", "tem:admin", "tem:masters", "admin=admin"},
		{"", "", "admin", "system:kube-scheduler\n", "\n", "admin=admin"},
		{"system:", "system:", "admin", "alice", "devs", "admin=admin"},
		{"oidc:", "oidc:", "admin,edit", "alice\nalice\n\u00e9\n\xff", "grp", "admin=admin+edit,edit=edit"},
		{"mesh:", "", "a,a-b", "alice", "", "a=b+c,a-b=x"},
		{"mesh:", "", "admin,admin-view", "alice", "", "admin=admin+view,admin-view=view"},
		{"mesh:", "", "admin,owner", "alice", "", "admin=admin+" + strings.Repeat("x", 253)},
		{"mesh:", "", "Admin,a..b,", "alice", "", "Admin=admin,=view"},
	} {
		f.Add(s.userPrefix, s.groupPrefix, s.roles, s.users, s.groups, s.mapping)
	}
	f.Fuzz(func(t *testing.T, userPrefix, groupPrefix, roles, users, groups, mappingSpec string) {
		r := &MeshProjectReconciler{UsernamePrefix: userPrefix, GroupsPrefix: groupPrefix}
		project, mapping := fuzzProject(roles, users, groups), fuzzMapping(mappingSpec)
		plans := r.desiredRoleBindings(project, "acme-shop", mapping)

		if again := r.desiredRoleBindings(project.DeepCopy(), "acme-shop", mapping); !cmp.Equal(plans, again, planCmp) {
			t.Fatalf("two calls disagree:\n%s", cmp.Diff(plans, again, planCmp))
		}
		reordered := project.DeepCopy()
		for i := range reordered.Spec.RoleBindings {
			slices.Reverse(reordered.Spec.RoleBindings[i].Users)
			slices.Reverse(reordered.Spec.RoleBindings[i].Groups)
		}
		if again := r.desiredRoleBindings(reordered, "acme-shop", mapping); !cmp.Equal(plans, again, planCmp) {
			t.Fatalf("reordering users and groups changes the bindings:\n%s", cmp.Diff(plans, again, planCmp))
		}

		if len(plans) != len(project.Spec.RoleBindings) {
			t.Fatalf("%d plans for %d roles", len(plans), len(project.Spec.RoleBindings))
		}
		names := map[string]string{}
		for i, plan := range plans {
			binding := project.Spec.RoleBindings[i]
			clusterRoles, mapped := mapping.roles[binding.Role]
			if plan.role != binding.Role || plan.mapped != mapped {
				t.Fatalf("plan %d is for role %q (mapped %v), want %q (mapped %v)", i, plan.role, plan.mapped, binding.Role, mapped)
			}
			reasons := map[string]int{}
			for _, p := range plan.problems {
				reasons[p.reason]++
				if !strings.Contains(p.message, fmt.Sprintf("%q", binding.Role)) {
					t.Errorf("problem %q does not name role %q", p.message, binding.Role)
				}
			}
			// Each ClusterRole gets its binding, or is reported as a clash.
			if len(plan.wants)+reasons[meshv1.ReasonRoleBindingNameClash] != len(clusterRoles) {
				t.Fatalf("role %q: %d bindings and %d clashes for %d ClusterRoles", binding.Role, len(plan.wants), reasons[meshv1.ReasonRoleBindingNameClash], len(clusterRoles))
			}
			if mapped && refusesSubjects(r, binding) != (reasons[meshv1.ReasonInvalidSubject] == 1) {
				t.Errorf("role %q: %d InvalidSubject problems (%v)", binding.Role, reasons[meshv1.ReasonInvalidSubject], plan.problems)
			}
			for _, rb := range plan.wants {
				if !slices.Contains(clusterRoles, rb.RoleRef.Name) {
					t.Fatalf("role %q is bound to ClusterRole %q, which the mapping does not give it", binding.Role, rb.RoleRef.Name)
				}
				checkDesiredRoleBinding(t, r, project, binding, rb.RoleRef.Name, rb)
				what := binding.Role + " -> ClusterRole " + rb.RoleRef.Name
				if other, taken := names[rb.Name]; taken {
					t.Errorf("RoleBinding name %q is wanted for role %s and for role %s", rb.Name, other, what)
				}
				names[rb.Name] = what
			}
		}
	})
}

// planCmp compares plans, unexported fields included.
var planCmp = cmp.AllowUnexported(rolePlan{}, problem{})

// bindable is the rule the bindings must follow: a subject is bound unless
// its name is empty or, with the prefix, starts with "system:".
func bindable(prefix string, n meshv1.SubjectName) bool {
	return n != "" && !strings.HasPrefix(prefix+string(n), "system:")
}

func refusesSubjects(r *MeshProjectReconciler, binding meshv1.ProjectRoleBinding) bool {
	return slices.ContainsFunc(binding.Users, func(n meshv1.SubjectName) bool { return !bindable(r.UsernamePrefix, n) }) ||
		slices.ContainsFunc(binding.Groups, func(n meshv1.SubjectName) bool { return !bindable(r.GroupsPrefix, n) })
}

// checkDesiredRoleBinding checks one desired RoleBinding of role binding
// to clusterRole.
func checkDesiredRoleBinding(t *testing.T, r *MeshProjectReconciler, project *meshv1.MeshProject, binding meshv1.ProjectRoleBinding, clusterRole string, rb *rbacv1.RoleBinding) {
	t.Helper()
	if rb.Namespace != "acme-shop" || rb.Annotations[meshv1.AnnotationMeshProject] != project.Name ||
		rb.Labels[meshv1.LabelManagedBy] != meshv1.ManagedByValue || rb.Labels[meshv1.LabelRole] != binding.Role {
		t.Errorf("RoleBinding %q lacks the operator's marks: %+v", rb.Name, rb.ObjectMeta)
	}
	if want := (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole}); rb.RoleRef != want {
		t.Errorf("RoleBinding %q refers to %+v, want %+v", rb.Name, rb.RoleRef, want)
	}
	// Roles that the schema accepts give RoleBinding names the API accepts.
	if len(validation.IsDNS1123Label(binding.Role)) == 0 {
		if errs := content.IsPathSegmentName(rb.Name); len(errs) > 0 || len(rb.Name) > validation.DNS1123SubdomainMaxLength {
			t.Errorf("RoleBinding name %q (role %q, ClusterRole %q) is not a valid name: %v", rb.Name, binding.Role, clusterRole, errs)
		}
	}
	prefixes := map[string]string{rbacv1.UserKind: r.UsernamePrefix, rbacv1.GroupKind: r.GroupsPrefix}
	bound := map[string][]string{} // by kind, without the prefix
	for _, s := range rb.Subjects {
		if s.APIGroup != rbacv1.GroupName || s.Namespace != "" {
			t.Errorf("subject %+v: want APIGroup %q and no namespace", s, rbacv1.GroupName)
		}
		if strings.HasPrefix(s.Name, "system:") {
			t.Errorf("RoleBinding %q binds %s %q, a name reserved for Kubernetes (prefixes %q, %q)", rb.Name, s.Kind, s.Name, r.UsernamePrefix, r.GroupsPrefix)
		}
		prefix, ok := prefixes[s.Kind]
		if !ok || !strings.HasPrefix(s.Name, prefix) {
			t.Errorf("subject %+v lacks the prefix %q of its kind", s, prefix)
		}
		bound[s.Kind] = append(bound[s.Kind], strings.TrimPrefix(s.Name, prefix))
	}
	// Every name is bound, but the ones no RoleBinding may name.
	expect := func(kind, prefix string, names []meshv1.SubjectName, got []string) {
		var want []string
		for _, n := range names {
			if bindable(prefix, n) {
				want = append(want, string(n))
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s subjects of RoleBinding %q (-want +got):\n%s", kind, rb.Name, diff)
		}
	}
	expect(rbacv1.UserKind, r.UsernamePrefix, binding.Users, bound[rbacv1.UserKind])
	expect(rbacv1.GroupKind, r.GroupsPrefix, binding.Groups, bound[rbacv1.GroupKind])
}

// TestDesiredRoleBindingsLeaveOut shows the two cases the fuzz test found:
// a "system:" group bound under the default empty groups prefix, and two
// roles of a zone that need the same RoleBinding name.
func TestDesiredRoleBindingsLeaveOut(t *testing.T) {
	r := &MeshProjectReconciler{UsernamePrefix: "mesh:", GroupsPrefix: ""}
	project := fuzzProject("admin,admin-view", "alice", "system:masters\ndevs")
	plans := r.desiredRoleBindings(project, "acme-shop", fuzzMapping("admin=admin+view,admin-view=view"))

	admin, adminView := plans[0], plans[1]
	if len(admin.wants) != 2 || len(admin.problems) != 1 || admin.problems[0].reason != meshv1.ReasonInvalidSubject ||
		admin.problems[0].message != `role "admin": group "system:masters" left out: no RoleBinding may name an empty subject or one that `+
			`starts with "system:", which Kubernetes reserves for its own users and groups` {
		t.Errorf("role admin: %+v", admin)
	}
	want := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:alice"}}
	if diff := cmp.Diff(want, admin.wants[0].Subjects); diff != "" {
		t.Errorf("subjects of role admin (-want +got):\n%s", diff)
	}
	if len(adminView.wants) != 0 || len(adminView.problems) != 1 || adminView.problems[0].reason != meshv1.ReasonRoleBindingNameClash ||
		adminView.problems[0].message != `role "admin-view" (ClusterRole "view") needs RoleBinding meshproject-admin-view, `+
			`which role "admin" (ClusterRole "view") has; it is left out: rename one of the roles in fuzz` {
		t.Errorf("role admin-view: %+v", adminView)
	}
}
