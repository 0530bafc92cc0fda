package replicator

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// RoleBindingName is the name of the RoleBinding for a meshProject role.
func RoleBindingName(role string) string { return "meshproject-" + role }

// reconcileRoleBindings makes the managed RoleBindings in ns match the
// spec: one per role that maps to an existing ClusterRole, none for roles
// that are gone. Each role converges on its own; the errors are joined.
func (r *MeshProjectReconciler) reconcileRoleBindings(ctx context.Context, project *meshv1.MeshProject, ns *corev1.Namespace, out *outcome) error {
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
	for _, binding := range project.Spec.RoleBindings {
		clusterRole, mapped := r.RoleMapping[binding.Role]
		if !mapped {
			out.block(ReasonUnknownRole, "role %q is not mapped to a ClusterRole (mapped roles: %s)", binding.Role, r.RoleMapping)
			continue
		}
		exists, err := r.clusterRoleExists(ctx, clusterRole)
		if err != nil {
			keep[RoleBindingName(binding.Role)] = true
			errs = append(errs, err)
			continue
		}
		if !exists {
			out.block(ReasonClusterRoleNotFound, "role %q maps to ClusterRole %q, which does not exist", binding.Role, clusterRole)
			continue
		}
		want := r.desiredRoleBinding(project, ns.Name, binding, clusterRole)
		keep[want.Name] = true
		if err := r.reconcileRoleBinding(ctx, project, want, current[want.Name], out); err != nil {
			errs = append(errs, err)
		}
	}
	for name, rb := range current {
		if keep[name] {
			continue
		}
		if err := r.Client.Delete(ctx, rb, client.Preconditions{UID: &rb.UID}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err))
			continue
		}
		log.FromContext(ctx).Info("Deleted RoleBinding", "roleBinding", rb.Name)
		out.access.record(rb, rb.Subjects, nil)
	}
	return errors.Join(errs...)
}

func (r *MeshProjectReconciler) clusterRoleExists(ctx context.Context, name string) (bool, error) {
	cr := &metav1.PartialObjectMetadata{}
	cr.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"))
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, cr)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading ClusterRole %s: %w", name, err)
	}
	return true, nil
}

// reconcileRoleBinding creates want, or makes have equal to it. have is nil
// when the cache holds no managed binding of that name.
func (r *MeshProjectReconciler) reconcileRoleBinding(ctx context.Context, project *meshv1.MeshProject, want, have *rbacv1.RoleBinding, out *outcome) error {
	logger := log.FromContext(ctx).WithValues("roleBinding", want.Name)
	if have == nil && blockedBy(project, ReasonRoleBindingConflict) {
		// Known conflict: look, rather than send a create bound to fail.
		found := &rbacv1.RoleBinding{}
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), found)
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		if err == nil {
			have = found
		}
	}
	if have == nil {
		err := r.Client.Create(ctx, want)
		if err == nil {
			logger.Info("Created RoleBinding")
			out.access.record(want, nil, want.Subjects)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		have = &rbacv1.RoleBinding{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), have); err != nil {
			return fmt.Errorf("reading RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	if have.Annotations[meshv1.AnnotationMeshProject] != project.Name {
		out.retry = true
		out.block(ReasonRoleBindingConflict, "RoleBinding %s/%s already exists and was not created by this operator; it is left untouched", want.Namespace, want.Name)
		return nil
	}

	if !equality.Semantic.DeepEqual(have.RoleRef, want.RoleRef) {
		// roleRef is immutable: the binding has to be replaced.
		if err := r.Client.Delete(ctx, have, client.Preconditions{UID: &have.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing RoleBinding %s/%s: %w", have.Namespace, have.Name, err)
		}
		out.access.record(have, have.Subjects, nil)
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("replacing RoleBinding %s/%s: %w", want.Namespace, want.Name, err)
		}
		logger.Info("Replaced RoleBinding", "clusterRole", want.RoleRef.Name)
		out.access.record(want, nil, want.Subjects)
		return nil
	}

	updated := have.DeepCopy()
	updated.Subjects = want.Subjects
	mergeMarks(updated, want)
	if equality.Semantic.DeepEqual(have, updated) {
		return nil
	}
	if err := r.Client.Update(ctx, updated); err != nil {
		return fmt.Errorf("updating RoleBinding %s/%s: %w", have.Namespace, have.Name, err)
	}
	logger.Info("Updated RoleBinding")
	out.access.record(updated, have.Subjects, updated.Subjects)
	return nil
}

// mergeMarks copies want's labels and annotations onto obj and keeps the
// ones others added.
func mergeMarks(obj, want metav1.Object) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range want.GetLabels() {
		labels[k] = v
	}
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	for k, v := range want.GetAnnotations() {
		annotations[k] = v
	}
	obj.SetAnnotations(annotations)
}

func (r *MeshProjectReconciler) desiredRoleBinding(project *meshv1.MeshProject, namespace string, binding meshv1.ProjectRoleBinding, clusterRole string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{
			Name:      RoleBindingName(binding.Role),
			Namespace: namespace,
			Labels: map[string]string{
				meshv1.LabelManagedBy: meshv1.ManagedByValue,
				meshv1.LabelRole:      binding.Role,
			},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: project.Name},
		},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects: append(
			subjects(rbacv1.UserKind, r.UsernamePrefix, binding.Users),
			subjects(rbacv1.GroupKind, r.GroupsPrefix, binding.Groups)...),
	}
}

// subjects returns RBAC subjects for names, sorted so that reordering the
// spec does not rewrite the binding.
func subjects(kind, prefix string, names []meshv1.SubjectName) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, rbacv1.Subject{Kind: kind, APIGroup: rbacv1.GroupName, Name: prefix + string(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
