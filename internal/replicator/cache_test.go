package replicator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func TestCacheTransform(t *testing.T) {
	project := &meshv1.MeshProject{ObjectMeta: metav1.ObjectMeta{Name: "p",
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"big":"copy"}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	quota := &corev1.ResourceQuota{
		Spec:   corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("3")}},
	}
	transform := CacheTransform()
	for _, obj := range []any{project, quota} {
		if _, err := transform(obj); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]string{"keep": "me"}, project.Annotations); diff != "" || project.ManagedFields != nil {
		t.Errorf("annotations (-want +got):\n%s\nmanagedFields %v", diff, project.ManagedFields)
	}
	if quota.Status.Used != nil || quota.Spec.Hard.Pods().String() != "5" {
		t.Errorf("quota after the transform: %+v", quota)
	}
}
