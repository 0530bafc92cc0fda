package informercache

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// The transform shares maps and strings between cached objects; that is
// safe only while the cache hands out deep copies. The integration suite
// shows the copies through the manager's real cache
// (test/integration/replicator/cache_test.go).
func TestOptionsKeepHandingOutCopies(t *testing.T) {
	opts := Options()
	if opts.DefaultTransform == nil {
		t.Error("no DefaultTransform: the cache would keep whole objects")
	}
	if opts.DefaultUnsafeDisableDeepCopy != nil && *opts.DefaultUnsafeDisableDeepCopy {
		t.Error("DefaultUnsafeDisableDeepCopy: readers would get the shared maps")
	}
	kinds := map[string]string{}
	for obj, by := range opts.ByObject {
		if by.UnsafeDisableDeepCopy != nil && *by.UnsafeDisableDeepCopy {
			t.Errorf("%T: UnsafeDisableDeepCopy, readers would get the shared maps", obj)
		}
		if by.Transform != nil {
			t.Errorf("%T: a transform of its own replaces the DefaultTransform", obj)
		}
		kinds[kindOf(obj)] = by.Label.String()
	}
	managed := meshv1.LabelManagedBy + "=" + meshv1.ManagedByValue
	want := map[string]string{
		kindOf(&corev1.Namespace{}): managed, kindOf(&rbacv1.RoleBinding{}): managed, kindOf(&corev1.ResourceQuota{}): managed,
		kindOf(&corev1.LimitRange{}): managed, kindOf(&networkingv1.NetworkPolicy{}): managed,
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("cached kinds and their label selectors (-want +got):\n%s", diff)
	}
}

func kindOf(obj client.Object) string { return fmt.Sprintf("%T", obj) }
