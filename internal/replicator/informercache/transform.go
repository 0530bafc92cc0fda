package informercache

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// Transform drops from cached objects what the operator never reads
// there, which is most of what they weigh: managedFields (which the API
// server keeps when an update leaves them out), the copy of the whole
// object that `kubectl apply` keeps in an annotation (of the kinds it only
// patches, see patchedOnly), a ResourceQuota's status, and the specs of
// ResourceQuotas, LimitRanges and NetworkPolicies, which it keeps as a
// digest (see labelCachedSpecDigest) and writes whole from the wanted
// spec, so those three keep every annotation. Equal strings and label maps
// are shared between objects (see sharedMetadata). Each call returns a
// transform with tables of its own, which live as long as it.
func Transform() toolscache.TransformFunc {
	stripManagedFields := cache.TransformStripManagedFields()
	shared := newSharedMetadata()
	return func(in any) (any, error) {
		obj, err := stripManagedFields(in)
		if err != nil {
			return obj, err
		}
		o, ok := obj.(metav1.Object)
		if !ok {
			return obj, nil
		}
		keepSpecDigest(obj)
		// Only MeshProjects and MeshLandingZones lose kubectl's copy: the
		// operator writes them with merge patches computed between two
		// cached copies, which leave the annotation on the server alone.
		// Namespaces and RoleBindings (and the baseline objects) are
		// written with updates from their cached metadata, which would
		// delete it on the server.
		if patchedOnly(obj) {
			if annotations := o.GetAnnotations(); annotations[corev1.LastAppliedConfigAnnotation] != "" {
				delete(annotations, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(annotations)
			}
		}
		shared.share(o)
		return obj, nil
	}
}

// patchedOnly reports whether obj is of a kind the operator writes only
// with merge patches, never with an update from the cache.
func patchedOnly(obj any) bool {
	switch obj.(type) {
	case *meshv1.MeshProject, *meshv1.MeshLandingZone:
		return true
	}
	return false
}
