package replicator

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func TestCacheTransform(t *testing.T) {
	project := &meshv1.MeshProject{ObjectMeta: metav1.ObjectMeta{Name: "p",
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"big":"copy"}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	transform := CacheTransform()
	if _, err := transform(project); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"keep": "me"}, project.Annotations); diff != "" || project.ManagedFields != nil {
		t.Errorf("annotations (-want +got):\n%s\nmanagedFields %v", diff, project.ManagedFields)
	}
}

func TestCacheKeepsBaselineSpecsAsDigests(t *testing.T) {
	marks := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: "ns",
			Labels:      map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: "p"}}
	}
	pods := func(n string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourcePods: resource.MustParse(n)}
	}
	quota := func(n string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: marks(), Spec: corev1.ResourceQuotaSpec{Hard: pods(n)},
			Status: corev1.ResourceQuotaStatus{Used: pods("3")}}
	}
	limits := func(n string) *corev1.LimitRange {
		return &corev1.LimitRange{ObjectMeta: marks(), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Max: pods(n)}}}}
	}
	policy := func(types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: marks(), Spec: networkingv1.NetworkPolicySpec{PolicyTypes: types}}
	}
	unmarked := quota("5")
	unmarked.Labels = nil

	cases := []struct {
		name         string
		cached, want client.Object
		wantSpec     func(client.Object) any
		asWanted     bool
	}{
		{"quota as wanted", quota("5"), quota("5000m"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, true},
		{"quota drifted", quota("5"), quota("6"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, false},
		{"quota without the operator's label", unmarked, quota("5"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, false},
		{"limit range as wanted", limits("5"), limits("5"), func(o client.Object) any { return &o.(*corev1.LimitRange).Spec }, true},
		{"limit range drifted", limits("5"), limits("50"), func(o client.Object) any { return &o.(*corev1.LimitRange).Spec }, false},
		{"policy as wanted", policy(networkingv1.PolicyTypeIngress), policy(networkingv1.PolicyTypeIngress),
			func(o client.Object) any { return &o.(*networkingv1.NetworkPolicy).Spec }, true},
		{"policy drifted", policy(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress), policy(networkingv1.PolicyTypeIngress),
			func(o client.Object) any { return &o.(*networkingv1.NetworkPolicy).Spec }, false},
	}
	transform := CacheTransform()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Informers may transform an object they already hold: twice
			// must equal once.
			for range 2 {
				if _, err := transform(tc.cached); err != nil {
					t.Fatal(err)
				}
			}
			if !digestOnly(tc.cached) {
				t.Fatalf("no digest in %+v", tc.cached)
			}
			empty := tc.want.DeepCopyObject().(client.Object)
			keepSpecDigest(empty)
			if diff := cmp.Diff(tc.wantSpec(empty), tc.wantSpec(tc.cached)); diff != "" {
				t.Errorf("the cache kept the spec or status (-want +got):\n%s", diff)
			}
			if got := cachedAsWanted(tc.cached, tc.want, tc.wantSpec(tc.want)); got != tc.asWanted {
				t.Errorf("cachedAsWanted = %v, want %v", got, tc.asWanted)
			}
		})
	}
	q := quota("5")
	keepSpecDigest(q)
	if q.Status.Used != nil {
		t.Errorf("a cached quota keeps its usage: %+v", q.Status)
	}
	if errs := validation.IsQualifiedName(annotationCachedSpecDigest); len(errs) == 0 {
		t.Errorf("%q is a valid annotation key, so an object on the server could carry a forged digest", annotationCachedSpecDigest)
	}
}
