package replicator

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator/informercache"
)

// kind describes a namespaced kind of the landing zone baseline
// (ResourceQuota, LimitRange, NetworkPolicy) to converge generically.
type kind[T client.Object] struct {
	name string
	// invalid is the Ready reason of an object the API server refuses as
	// invalid; source names what the object is made from.
	invalid, source string
	newObj          func() T
	// list lists the managed objects of the kind in a namespace.
	list func(ctx context.Context, c client.Reader, namespace string) ([]T, error)
	// spec points to obj's spec; setSpec copies want's spec onto obj.
	spec    func(obj T) any
	setSpec func(obj, want T)
}

// managedIn selects the operator's objects in namespace.
func managedIn(namespace string) []client.ListOption {
	return []client.ListOption{client.InNamespace(namespace), client.MatchingLabels{meshv1.LabelManagedBy: meshv1.ManagedByValue}}
}

// pointers returns pointers to the items of a list.
func pointers[E any](items []E) []*E {
	out := make([]*E, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// baselineMeta is the metadata of a baseline object of the project: the
// operator's labels, the zone it comes from and the ownership annotation.
func baselineMeta(s *scope, name string) metav1.ObjectMeta {
	labels := map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue}
	if s.zone != nil {
		labels[meshv1.LabelLandingZone] = s.zone.Name
	}
	return metav1.ObjectMeta{
		Name: name, Namespace: s.ns.Name, Labels: labels,
		Annotations: map[string]string{meshv1.AnnotationMeshProject: s.project.Name},
	}
}

// converge makes the project's objects of kind k in its namespace exactly
// wants: it creates the missing ones, restores drifted ones and deletes
// the ones no longer wanted. Objects without the operator's marks are
// never changed or deleted. Nothing is written when they already match.
func converge[T client.Object](ctx context.Context, r *MeshProjectReconciler, s *scope, k kind[T], wants []T) error {
	listed, err := k.list(ctx, r.Client, s.ns.Name)
	if err != nil {
		return fmt.Errorf("listing %ss in namespace %s: %w", k.name, s.ns.Name, err)
	}
	current := map[string]T{}
	for _, obj := range listed {
		if obj.GetAnnotations()[meshv1.AnnotationMeshProject] == s.project.Name {
			current[obj.GetName()] = obj
		}
	}
	var errs []error
	for _, want := range wants {
		have, found := current[want.GetName()]
		delete(current, want.GetName())
		if err := convergeOne(ctx, r, s, k, want, have, found); err != nil {
			errs = append(errs, err)
		}
	}
	for _, obj := range current {
		uid := obj.GetUID()
		if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", k.name, obj.GetNamespace(), obj.GetName(), err))
			continue
		}
		log.FromContext(ctx).Info("Deleted "+k.name, "name", obj.GetName())
	}
	return errors.Join(errs...)
}

// convergeOne creates want, or makes have (found in the cache) equal to it.
func convergeOne[T client.Object](ctx context.Context, r *MeshProjectReconciler, s *scope, k kind[T], want, have T, found bool) error {
	key := client.ObjectKeyFromObject(want)
	if !found {
		err := r.Client.Create(ctx, want)
		if err == nil {
			log.FromContext(ctx).Info("Created "+k.name, "name", key.Name)
			return nil
		}
		if apierrors.IsInvalid(err) {
			blockInvalid(s, k, key, err)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s/%s: %w", k.name, key.Namespace, key.Name, err)
		}
		have = k.newObj()
		if err := r.APIReader.Get(ctx, key, have); err != nil {
			return fmt.Errorf("reading %s %s/%s: %w", k.name, key.Namespace, key.Name, err)
		}
	}
	if have.GetAnnotations()[meshv1.AnnotationMeshProject] != s.project.Name {
		// The namespace is the project's and the name the operator's: an
		// object someone else made there is replaced, not obeyed.
		if err := r.removeForeign(ctx, s.project, k.name, have); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, want); apierrors.IsInvalid(err) {
			blockInvalid(s, k, key, err)
		} else if err != nil {
			return fmt.Errorf("creating %s %s/%s: %w", k.name, key.Namespace, key.Name, err)
		}
		return nil
	}
	if informercache.CachedAsWanted(have, want, k.spec(want)) && len(have.GetFinalizers()) == 0 && len(have.GetOwnerReferences()) == 0 {
		return nil
	}
	updated := have.DeepCopyObject().(T)
	// A cached object without its spec is written from its cached metadata
	// (all of it but managedFields, which the API server keeps) and the
	// wanted spec; its resourceVersion fences the update.
	digested := informercache.DropSpecDigest(updated)
	k.setSpec(updated, want)
	mergeMarks(updated, want)
	dropForeignMetadata(updated)
	if !digested && equality.Semantic.DeepEqual(have, updated) {
		return nil
	}
	if err := r.Client.Update(ctx, updated); apierrors.IsInvalid(err) {
		blockInvalid(s, k, key, err)
		return nil
	} else if err != nil {
		return fmt.Errorf("updating %s %s/%s: %w", k.name, key.Namespace, key.Name, err)
	}
	log.FromContext(ctx).Info("Updated "+k.name, "name", key.Name)
	return nil
}

// removeForeign deletes an object that has one of the operator's names in
// the project's own namespace but was not created by it: kept, it would
// grant or limit what the spec does not say. Its finalizers go first, so
// that it cannot stay behind in Terminating; the UID precondition keeps
// the delete from hitting an object created since it was read.
func (r *MeshProjectReconciler) removeForeign(ctx context.Context, project *meshv1.MeshProject, kind string, obj client.Object) error {
	if len(obj.GetFinalizers()) > 0 {
		obj.SetFinalizers(nil)
		if err := r.Client.Update(ctx, obj); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing the finalizers of %s %s/%s, which the operator did not create: %w", kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	uid := obj.GetUID()
	if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %s %s/%s, which the operator did not create: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	log.FromContext(ctx).Info("Deleted an object with the operator's name that it did not create", "kind", kind, "name", obj.GetName())
	r.Recorder.Eventf(project, obj, corev1.EventTypeWarning, meshv1.ReasonForeignObjectReplaced, "Replace",
		"Replaced %s %s/%s, which the operator did not create, with the project's own", kind, obj.GetNamespace(), obj.GetName())
	return nil
}

// blockInvalid reports an object the API server refused as invalid: the
// schema of the MeshProject or the zone let through what the object's own
// validation does not (a quota of 500m pods, say). Retrying cannot help;
// a change of the spec or the zone starts the next pass.
func blockInvalid[T client.Object](s *scope, k kind[T], key client.ObjectKey, err error) {
	s.out.block(k.invalid, "%s %s/%s is refused by the API server and left as it is; fix %s: %v", k.name, key.Namespace, key.Name, k.source, err)
}

// release removes the operator's marks from the project's objects of kind
// k in namespace (deletion policy Retain): they stay, unmanaged.
func release[T client.Object](ctx context.Context, r *MeshProjectReconciler, project *meshv1.MeshProject, namespace string, k kind[T]) error {
	objs, err := k.list(ctx, r.APIReader, namespace)
	if err != nil {
		return fmt.Errorf("listing %ss in namespace %s: %w", k.name, namespace, err)
	}
	for _, obj := range objs {
		if obj.GetAnnotations()[meshv1.AnnotationMeshProject] != project.Name {
			continue
		}
		unmark(obj)
		if err := r.Client.Update(ctx, obj); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("releasing %s %s/%s: %w", k.name, namespace, obj.GetName(), err)
		}
	}
	return nil
}
