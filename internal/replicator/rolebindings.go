package replicator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// RoleBindingName is the name of the RoleBinding of a meshProject role that
// maps to one ClusterRole (scripts and users rely on it).
func RoleBindingName(role string) string { return "meshproject-" + role }

// MultiRoleBindingName is the name of the RoleBinding for one of the
// ClusterRoles of a role that maps to several. Names longer than an object
// name may be end in a hash of the ClusterRole's name.
func MultiRoleBindingName(role, clusterRole string) string {
	name := RoleBindingName(role) + "-" + clusterRole
	if len(name) > validation.DNS1123SubdomainMaxLength {
		sum := sha256.Sum256([]byte(clusterRole))
		name = RoleBindingName(role) + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// reconcileRoleBindings makes the managed RoleBindings in the namespace
// match the spec: one per role and ClusterRole it maps to, when the
// ClusterRole exists; none for roles that are gone. New bindings are made
// before old ones are deleted, so a change of mapping interrupts no one's
// access; a role whose new binding could not be made keeps its old ones.
// Each role converges on its own; the errors are joined.
func (r *MeshProjectReconciler) reconcileRoleBindings(ctx context.Context, s *scope) error {
	project, ns, out := s.project, s.ns, s.out
	var list rbacv1.RoleBindingList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns.Name), client.MatchingLabels{meshv1.LabelManagedBy: meshv1.ManagedByValue}); err != nil {
		return fmt.Errorf("listing RoleBindings in namespace %s: %w", ns.Name, err)
	}
	current := map[string]*rbacv1.RoleBinding{}
	for i := range list.Items {
		if list.Items[i].Annotations[meshv1.AnnotationMeshProject] == project.Name {
			current[list.Items[i].Name] = &list.Items[i]
		}
	}

	var errs []error
	keep := map[string]bool{}
	// unfinished roles keep the bindings they have, except bindings to a
	// missing ClusterRole (they grant nothing).
	unfinished, missing := map[string]bool{}, map[string]bool{}
	for _, plan := range r.desiredRoleBindings(project, ns.Name, s.mapping) {
		if !plan.mapped {
			out.block(meshv1.ReasonUnknownRole, "role %q is not mapped to a ClusterRole by %s (mapped roles: %s)", plan.role, s.mapping.source, s.mapping)
			continue
		}
		for _, p := range plan.problems {
			out.block(p.reason, "%s", p.message)
		}
		for _, want := range plan.wants {
			clusterRole := want.RoleRef.Name
			exists, err := r.clusterRoleExists(ctx, clusterRole)
			if err != nil {
				keep[want.Name], unfinished[plan.role] = true, true
				errs = append(errs, err)
				continue
			}
			if !exists {
				out.block(meshv1.ReasonClusterRoleNotFound, "role %q maps to ClusterRole %q, which does not exist", plan.role, clusterRole)
				missing[clusterRole], unfinished[plan.role] = true, true
				continue
			}
			keep[want.Name] = true
			done, err := r.reconcileRoleBinding(ctx, project, want, current[want.Name], out)
			if err != nil {
				errs = append(errs, err)
			}
			if !done {
				unfinished[plan.role] = true
			}
		}
	}
	for name, rb := range current {
		if keep[name] || (unfinished[rb.Labels[meshv1.LabelRole]] && !missing[rb.RoleRef.Name]) {
			continue
		}
		if err := r.deleteRoleBinding(ctx, rb, out); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *MeshProjectReconciler) deleteRoleBinding(ctx context.Context, rb *rbacv1.RoleBinding, out *outcome) error {
	if err := r.Client.Delete(ctx, rb, client.Preconditions{UID: &rb.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err)
	}
	log.FromContext(ctx).Info("Deleted RoleBinding", "roleBinding", rb.Name)
	out.access.record(rb, rb.Subjects, nil)
	return nil
}

// bindRefused reports whether the API server refused a RoleBinding because
// its creator may neither bind its ClusterRole nor holds its permissions.
func bindRefused(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "attempting to grant RBAC permissions not currently held")
}

// createRoleBinding creates rb. A refused bind is reported in the outcome
// (created false, no error): it needs a cluster admin, not a retry.
func (r *MeshProjectReconciler) createRoleBinding(ctx context.Context, project *meshv1.MeshProject, rb *rbacv1.RoleBinding, out *outcome) (created bool, err error) {
	refused := func() (bool, error) {
		out.retry = true
		out.block(meshv1.ReasonClusterRoleNotBindable, "the operator may not bind ClusterRole %q (role %q): add %q to the resourceNames of the bind rule of "+
			"ClusterRole meshfed-service (chart values roleMapping or landingZones.bindableClusterRoles)", rb.RoleRef.Name, rb.Labels[meshv1.LabelRole], rb.RoleRef.Name)
		return false, nil
	}
	if blockedBy(project, meshv1.RoleBindingsReadyCondition, meshv1.ReasonClusterRoleNotBindable) {
		// Known refusal: ask, rather than send a create bound to fail. (A
		// ClusterRole whose every permission the operator holds could be
		// bound without the bind right; such a role is never refused.)
		ok, err := r.mayBind(ctx, rb.RoleRef.Name)
		if err != nil {
			return false, err
		}
		if !ok {
			return refused()
		}
	}
	err = r.Client.Create(ctx, rb)
	if bindRefused(err) {
		return refused()
	}
	if err != nil {
		return false, err
	}
	log.FromContext(ctx).Info("Created RoleBinding", "roleBinding", rb.Name, "clusterRole", rb.RoleRef.Name)
	out.access.record(rb, nil, rb.Subjects)
	return true, nil
}

// mayBind asks the API server whether the operator may bind clusterRole.
func (r *MeshProjectReconciler) mayBind(ctx context.Context, clusterRole string) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: rbacv1.GroupName, Resource: "clusterroles", Verb: "bind", Name: clusterRole},
	}}
	if err := r.Client.Create(ctx, review); err != nil {
		return false, fmt.Errorf("asking whether ClusterRole %s may be bound: %w", clusterRole, err)
	}
	return review.Status.Allowed, nil
}

func (r *MeshProjectReconciler) clusterRoleExists(ctx context.Context, name string) (bool, error) {
	cr := &metav1.PartialObjectMetadata{}
	cr.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"))
	// Only existence is read: no copy of the cached metadata.
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, cr, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading ClusterRole %s: %w", name, err)
	}
	return true, nil
}

// reconcileRoleBinding creates want, or makes have equal to it. have is nil
// when the cache holds no managed binding of that name. done is false when
// want could not be put in place (the old binding, if any, stays).
func (r *MeshProjectReconciler) reconcileRoleBinding(ctx context.Context, project *meshv1.MeshProject, want, have *rbacv1.RoleBinding, out *outcome) (done bool, err error) {
	logger := log.FromContext(ctx).WithValues("roleBinding", want.Name)
	if have == nil {
		created, err := r.createRoleBinding(ctx, project, want, out)
		if err == nil {
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("creating RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		have = &rbacv1.RoleBinding{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), have); err != nil {
			return false, fmt.Errorf("reading RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	if have.Annotations[meshv1.AnnotationMeshProject] != project.Name {
		// The namespace is the project's, and the name is the operator's:
		// a binding someone else made there grants what the spec does not.
		if err := r.removeForeign(ctx, project, "RoleBinding", have); err != nil {
			return false, err
		}
		out.access.record(have, have.Subjects, nil)
		return r.createRoleBinding(ctx, project, want, out)
	}

	if !equality.Semantic.DeepEqual(have.RoleRef, want.RoleRef) {
		return r.replaceRoleBinding(ctx, project, want, have, out)
	}

	updated := have.DeepCopy()
	updated.Subjects = want.Subjects
	mergeMarks(updated, want)
	dropForeignMetadata(updated)
	if equality.Semantic.DeepEqual(have, updated) {
		return true, nil
	}
	if err := r.Client.Update(ctx, updated); err != nil {
		return false, fmt.Errorf("updating RoleBinding %s/%s: %w", have.Namespace, have.Name, err)
	}
	logger.Info("Updated RoleBinding")
	out.access.record(updated, have.Subjects, updated.Subjects)
	return true, nil
}

// replaceRoleBinding replaces have by want, which has another ClusterRole
// (roleRef is immutable). So that nobody loses access in between, a bridge
// binding to the new ClusterRole is created first and deleted last.
func (r *MeshProjectReconciler) replaceRoleBinding(ctx context.Context, project *meshv1.MeshProject, want, have *rbacv1.RoleBinding, out *outcome) (done bool, err error) {
	bridge := want.DeepCopy()
	bridge.Name = MultiRoleBindingName(bridge.Labels[meshv1.LabelRole]+"-bridge", want.RoleRef.Name)
	created, err := r.createRoleBinding(ctx, project, bridge, out)
	switch {
	case err != nil && !apierrors.IsAlreadyExists(err):
		return false, fmt.Errorf("creating RoleBinding %s/%s: %w", bridge.Namespace, bridge.Name, err)
	case err == nil && !created:
		return false, nil // refused: the old binding stays
	}
	if err := r.deleteRoleBinding(ctx, have, out); err != nil {
		return false, err
	}
	// The bridge reported the access gained; want and the bridge's removal
	// change nobody's access.
	if _, err := r.createRoleBinding(ctx, project, want, &outcome{}); err != nil {
		return false, fmt.Errorf("replacing RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
	}
	log.FromContext(ctx).Info("Replaced RoleBinding", "roleBinding", want.Name, "clusterRole", want.RoleRef.Name)
	return true, r.deleteRoleBinding(ctx, bridge, &outcome{})
}

// mergeMarks copies want's labels and annotations onto obj and keeps the
// ones others added.
func mergeMarks(obj, want metav1.Object) {
	obj.SetLabels(merged(obj.GetLabels(), want.GetLabels()))
	obj.SetAnnotations(merged(obj.GetAnnotations(), want.GetAnnotations()))
}

// merged returns m (a new map when nil) with the entries of over added.
func merged(m, over map[string]string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, over)
	return m
}

// rolePlan is what the spec asks for one role: a RoleBinding per
// ClusterRole the mapping maps the role to.
type rolePlan struct {
	role string
	// mapped is false when the mapping does not map the role (no wants).
	mapped bool
	wants  []*rbacv1.RoleBinding
	// problems keep the project from being Ready although the role is
	// mapped: subjects left out, bindings left out for a name clash.
	problems []problem
}

// desiredRoleBindings returns, in spec order, the RoleBindings each role of
// the project asks for under mapping. It is pure; whether the ClusterRoles
// exist is for the caller to ask.
//
// Two roles of a landing zone can ask for the same RoleBinding name: role
// "a" mapped to ClusterRoles "b" and "c" wants meshproject-a-b, and so does
// role "a-b" mapped to one ClusterRole. Binding both would rewrite the one
// RoleBinding back and forth forever; the later role's binding is left out
// and reported instead.
func (r *MeshProjectReconciler) desiredRoleBindings(project *meshv1.MeshProject, namespace string, mapping roleMapping) []rolePlan {
	plans := make([]rolePlan, 0, len(project.Spec.RoleBindings))
	taken := map[string]string{}
	for _, binding := range project.Spec.RoleBindings {
		clusterRoles, mapped := mapping.roles[binding.Role]
		plan := rolePlan{role: binding.Role, mapped: mapped}
		users, refusedUsers := subjects(rbacv1.UserKind, r.UsernamePrefix, binding.Users)
		groups, refusedGroups := subjects(rbacv1.GroupKind, r.GroupsPrefix, binding.Groups)
		if refused := append(refusedUsers, refusedGroups...); mapped && len(refused) > 0 {
			plan.problems = append(plan.problems, problem{reason: meshv1.ReasonInvalidSubject, message: fmt.Sprintf(
				"role %q: %s left out: no RoleBinding may name an empty subject or one that starts with \"system:\", "+
					"which Kubernetes reserves for its own users and groups", binding.Role, strings.Join(refused, ", "))})
		}
		for _, clusterRole := range clusterRoles {
			name := RoleBindingName(binding.Role)
			if len(clusterRoles) > 1 {
				name = MultiRoleBindingName(binding.Role, clusterRole)
			}
			what := fmt.Sprintf("role %q (ClusterRole %q)", binding.Role, clusterRole)
			if other, ok := taken[name]; ok {
				plan.problems = append(plan.problems, problem{reason: meshv1.ReasonRoleBindingNameClash, message: fmt.Sprintf(
					"%s needs RoleBinding %s, which %s has; it is left out: rename one of the roles in %s", what, name, other, mapping.source)})
				continue
			}
			taken[name] = what
			plan.wants = append(plan.wants, desiredRoleBinding(project, namespace, name, binding.Role, clusterRole,
				slices.Concat(users, groups)))
		}
		plans = append(plans, plan)
	}
	return plans
}

// desiredRoleBinding is the RoleBinding, named name, that gives subjects
// the meshProject role through clusterRole.
func desiredRoleBinding(project *meshv1.MeshProject, namespace, name, role, clusterRole string, subjects []rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels: map[string]string{
				meshv1.LabelManagedBy: meshv1.ManagedByValue,
				meshv1.LabelRole:      role,
			},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: project.Name},
		},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects: subjects,
	}
}

// subjects returns RBAC subjects for names, sorted so that reordering the
// spec does not rewrite the binding. The schema refuses empty names and
// names that start with "system:", but the operator does not rely on it (a
// MeshProject stored before a rule existed keeps its spec, and a prefix
// may supply part of "system:"): a name that is empty or that would be
// bound as "system:..." is left out and returned in refused, quoted with
// its kind.
func subjects(kind, prefix string, names []meshv1.SubjectName) (out []rbacv1.Subject, refused []string) {
	out = make([]rbacv1.Subject, 0, len(names))
	for _, n := range names {
		if name := prefix + string(n); n == "" || ReservedSubjectName(name) {
			refused = append(refused, fmt.Sprintf("%s %q", strings.ToLower(kind), name))
			continue
		}
		out = append(out, rbacv1.Subject{Kind: kind, APIGroup: rbacv1.GroupName, Name: prefix + string(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	sort.Strings(refused)
	return out, refused
}

// ReservedSubjectName reports whether name is one Kubernetes reserves for
// its own users and groups (system:masters, system:serviceaccounts, ...).
func ReservedSubjectName(name string) bool { return strings.HasPrefix(name, "system:") }
