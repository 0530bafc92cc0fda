package replicator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// reconcileNamespace makes sure the project's namespace exists and carries
// the operator's labels and the zone's, and sets s.ns when it can be used.
// When it cannot be used yet the outcome says why.
func (r *MeshProjectReconciler) reconcileNamespace(ctx context.Context, s *scope) error {
	if s.withoutNamespace {
		return nil
	}
	ns, err := r.namespace(ctx, s)
	s.ns = ns
	return err
}

func (r *MeshProjectReconciler) namespace(ctx context.Context, s *scope) (*corev1.Namespace, error) {
	project, out := s.project, s.out
	logger := log.FromContext(ctx)
	key := client.ObjectKey{Name: project.NamespaceName()}
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, key, ns)
	if apierrors.IsNotFound(err) && blockedBy(project, meshv1.NamespaceReadyCondition, meshv1.ReasonNamespaceConflict) {
		// Known conflict: look, rather than send a create bound to fail.
		err = r.APIReader.Get(ctx, key, ns)
	}
	if apierrors.IsNotFound(err) {
		// The cache only holds managed namespaces: this one is either
		// missing or not ours, and Create tells which in one request.
		ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: key.Name}}
		markNamespace(ns, project, s.zoneLabels())
		err = r.Client.Create(ctx, ns)
		if err == nil {
			logger.Info("Created namespace")
			out.namespace, out.namespaceUID = ns.Name, ns.UID
			return ns, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating namespace %s: %w", key.Name, err)
		}
		ns = &corev1.Namespace{}
		err = r.APIReader.Get(ctx, key, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", key.Name, err)
	}

	if !ownsNamespace(project, ns) {
		out.retry = true
		if owner := ns.Annotations[meshv1.AnnotationMeshProject]; owner != "" && owner != project.Name {
			out.block(meshv1.ReasonNamespaceConflict, "namespace %s belongs to MeshProject %s", ns.Name, owner)
		} else {
			out.block(meshv1.ReasonNamespaceConflict, "namespace %s already exists and was not created by this operator for this MeshProject; it is left untouched "+
				"whatever labels or annotations it carries (delete or rename it, or change the identifiers)", ns.Name)
		}
		return nil, nil
	}
	out.namespaceUID = ns.UID
	out.namespace = ns.Name
	if !ns.DeletionTimestamp.IsZero() {
		out.block(meshv1.ReasonNamespaceTerminating, "namespace %s is being deleted; it is created again once it is gone", ns.Name)
		return nil, nil
	}
	if markNamespace(ns, project, s.zoneLabels()) || dropForeignMetadata(ns) {
		if err := r.Client.Update(ctx, ns); err != nil {
			return nil, fmt.Errorf("restoring labels of namespace %s: %w", ns.Name, err)
		}
		logger.Info("Restored namespace labels")
	}
	return ns, nil
}

// zoneLabels returns the namespace labels of the pass's zone, and the label
// naming the zone, or nil when
// the zone labels the namespace has are to be kept as they are.
func (s *scope) zoneLabels() map[string]string {
	if !s.baseline {
		return nil
	}
	labels := map[string]string{}
	if s.zone != nil {
		for k, v := range s.zone.Spec.NamespaceLabels {
			labels[k] = string(v)
		}
		// Metering attributes the namespace's usage to the zone by it.
		labels[meshv1.LabelLandingZone] = s.zone.Name
	}
	return labels
}

// markNamespace puts the operator's labels and ownership annotation on ns
// and drops labels of tags that are no longer in the spec. zoneLabels, if
// not nil, are the landing zone's labels: they are set, and the ones the
// zone set before but no longer has are dropped (the annotation
// AnnotationLandingZoneLabels remembers which). Labels the operator does
// not own are kept. It reports whether anything changed.
func markNamespace(ns *corev1.Namespace, project *meshv1.MeshProject, zoneLabels map[string]string) bool {
	want := map[string]string{
		meshv1.LabelManagedBy: meshv1.ManagedByValue,
		meshv1.LabelCustomer:  string(project.Spec.CustomerIdentifier),
		meshv1.LabelProject:   string(project.Spec.ProjectIdentifier),
	}
	for k, v := range project.Spec.Tags {
		want[meshv1.TagLabelPrefix+k] = string(v)
	}
	changed := false
	var fromZone []string
	if zoneLabels != nil {
		fromZone = strings.Split(ns.Annotations[meshv1.AnnotationLandingZoneLabels], ",")
		for k, v := range zoneLabels {
			want[k] = v
		}
	}
	for k := range ns.Labels {
		if _, wanted := want[k]; !wanted && (strings.HasPrefix(k, meshv1.TagLabelPrefix) || slices.Contains(fromZone, k)) {
			delete(ns.Labels, k)
			changed = true
		}
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	for k, v := range want {
		if cur, ok := ns.Labels[k]; !ok || cur != v {
			ns.Labels[k] = v
			changed = true
		}
	}
	if setAnnotation(ns, meshv1.AnnotationMeshProject, project.Name) {
		changed = true
	}
	if project.UID != "" && setAnnotation(ns, meshv1.AnnotationMeshProjectUID, string(project.UID)) {
		changed = true
	}
	if zoneLabels != nil && setAnnotation(ns, meshv1.AnnotationLandingZoneLabels, strings.Join(slices.Sorted(maps.Keys(zoneLabels)), ",")) {
		changed = true
	}
	return changed
}

// ownsNamespace reports whether ns is the project's namespace. It is
// when its UID is the one status.namespaceUID recorded. Before a UID is
// recorded (the operator stopped between creating the namespace and
// writing the status, or the project comes from a release that recorded
// none), the namespace is recognised by marks only the operator can have
// put there:
//   - the ownership annotations naming the project and carrying its UID
//     (a UID exists only once its MeshProject does, so a namespace made
//     before the project cannot carry it, and the chart's policy lets
//     nobody but the operator write the annotation), or
//   - for a project of the previous release: status.namespace (written
//     only by the operator, and only for a namespace it already managed)
//     names it, and it carries the managed-by label and the ownership
//     annotation. This makes nothing the operator's that the previous
//     release did not already manage.
//
// Anything else with the namespace's name is not the project's, whatever
// labels or annotations it carries.
func ownsNamespace(project *meshv1.MeshProject, ns *corev1.Namespace) bool {
	if project.Status.NamespaceUID != "" && ns.UID == project.Status.NamespaceUID {
		return true
	}
	if ns.Annotations[meshv1.AnnotationMeshProject] != project.Name {
		return false
	}
	if project.UID != "" && ns.Annotations[meshv1.AnnotationMeshProjectUID] == string(project.UID) {
		return true
	}
	return project.Status.NamespaceUID == "" && project.Status.Namespace == ns.Name &&
		ns.Labels[meshv1.LabelManagedBy] == meshv1.ManagedByValue
}

// dropForeignMetadata removes finalizers and ownerReferences from an
// object the operator manages: it adds none, and one someone else added
// could keep the object from going or have the garbage collector delete
// it with an object of theirs. It reports whether anything changed.
func dropForeignMetadata(obj metav1.Object) bool {
	if len(obj.GetFinalizers()) == 0 && len(obj.GetOwnerReferences()) == 0 {
		return false
	}
	obj.SetFinalizers(nil)
	obj.SetOwnerReferences(nil)
	return true
}

// setAnnotation sets annotation key to value, or removes it when value is
// empty, and reports whether that changed anything.
func setAnnotation(obj metav1.Object, key, value string) bool {
	annotations := obj.GetAnnotations()
	if cur, ok := annotations[key]; cur == value && (ok || value == "") {
		return false
	}
	if value == "" {
		delete(annotations, key)
	} else {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[key] = value
	}
	obj.SetAnnotations(annotations)
	return true
}

// ownedNamespace returns the project's namespace if the project owns it,
// and nil otherwise.
func (r *MeshProjectReconciler) ownedNamespace(ctx context.Context, project *meshv1.MeshProject) (*corev1.Namespace, error) {
	key := client.ObjectKey{Name: project.NamespaceName()}
	ns := &corev1.Namespace{}
	err := r.Client.Get(ctx, key, ns)
	if apierrors.IsNotFound(err) {
		// Someone may have removed the managed-by label: look past the cache.
		err = r.APIReader.Get(ctx, key, ns)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", key.Name, err)
	}
	if !ownsNamespace(project, ns) {
		return nil, nil
	}
	return ns, nil
}

// deleteNamespace implements DeletionPolicy Delete.
func (r *MeshProjectReconciler) deleteNamespace(ctx context.Context, project *meshv1.MeshProject) error {
	ns, err := r.ownedNamespace(ctx, project)
	if err != nil || ns == nil || !ns.DeletionTimestamp.IsZero() {
		return err
	}
	// The UID precondition keeps us from deleting a namespace that someone
	// else created under the same name since we read it.
	err = r.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting namespace %s: %w", ns.Name, err)
	}
	log.FromContext(ctx).Info("Deleted namespace")
	r.Recorder.Eventf(project, ns, corev1.EventTypeNormal, "NamespaceDeleted", "Delete", "Deleted namespace %s (deletionPolicy Delete)", ns.Name)
	return nil
}

// releaseNamespace implements DeletionPolicy Retain: the namespace and its
// RoleBindings stay, without the marks that make the operator manage them.
func (r *MeshProjectReconciler) releaseNamespace(ctx context.Context, project *meshv1.MeshProject) error {
	ns, err := r.ownedNamespace(ctx, project)
	if err != nil || ns == nil {
		return err
	}
	var bindings rbacv1.RoleBindingList
	if err := r.APIReader.List(ctx, &bindings, client.InNamespace(ns.Name)); err != nil {
		return fmt.Errorf("listing RoleBindings in namespace %s: %w", ns.Name, err)
	}
	for i := range bindings.Items {
		rb := &bindings.Items[i]
		if rb.Annotations[meshv1.AnnotationMeshProject] != project.Name {
			continue
		}
		unmark(rb)
		if err := r.Client.Update(ctx, rb); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("releasing RoleBinding %s/%s: %w", rb.Namespace, rb.Name, err)
		}
	}
	if r.LandingZonesPermitted {
		if err := errors.Join(
			release(ctx, r, project, ns.Name, resourceQuotas),
			release(ctx, r, project, ns.Name, limitRanges),
			release(ctx, r, project, ns.Name, networkPolicies)); err != nil {
			return err
		}
	}
	unmark(ns)
	if err := r.Client.Update(ctx, ns); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("releasing namespace %s: %w", ns.Name, err)
	}
	log.FromContext(ctx).Info("Released namespace")
	r.Recorder.Eventf(project, ns, corev1.EventTypeNormal, "NamespaceRetained", "Release", "Left namespace %s and its RoleBindings, ResourceQuota, LimitRange and NetworkPolicies in place, no longer managed (deletionPolicy Retain)", ns.Name)
	return nil
}

func unmark(obj metav1.Object) {
	labels := obj.GetLabels()
	delete(labels, meshv1.LabelManagedBy)
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	delete(annotations, meshv1.AnnotationMeshProject)
	delete(annotations, meshv1.AnnotationMeshProjectUID)
	obj.SetAnnotations(annotations)
}
