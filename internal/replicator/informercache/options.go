// Package informercache decides what the replicator's informer cache holds
// and in which form: only the objects the operator manages, without what
// it never reads there, with the specs of the baseline kinds kept as
// digests, and with equal strings and maps shared between objects. At
// 10,000 projects the cache holds about 70,000 objects; this is most of
// the operator's memory.
//
// Sharing relies on two invariants, which TestOptionsKeepHandingOutCopies,
// TestTransformingAgainWritesNoSharedMap and the integration spec "The
// operator's informer cache" (test/integration/replicator/cache_test.go)
// check:
//   - the shared maps and strings are written by no one after the
//     transform: the transform builds a shared map once and never changes
//     it, and handlers and readers only read cached objects;
//   - the cache hands out deep copies (Options never sets
//     UnsafeDisableDeepCopy), so a reader that changes what it got changes
//     its copy only. Readers that bypass the copy (a Get with
//     client.UnsafeDisableDeepCopy, the replicator's index of cached
//     MeshProjects) must only read.
package informercache

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// Options are the manager's cache options for the replicator: the managed
// kinds restricted to the objects the operator created, so that its memory
// grows with the number of projects and not with the cluster, and every
// object passed through Transform. Each call has tables of its own.
func Options() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{meshv1.LabelManagedBy: meshv1.ManagedByValue})
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}:           {Label: managed},
			&rbacv1.RoleBinding{}:         {Label: managed},
			&corev1.ResourceQuota{}:       {Label: managed},
			&corev1.LimitRange{}:          {Label: managed},
			&networkingv1.NetworkPolicy{}: {Label: managed},
		},
		DefaultTransform: Transform(),
	}
}
