package replicator

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// LimitRangeName is the name of the project's LimitRange.
const LimitRangeName = "meshproject-limits"

var limitRanges = kind[*corev1.LimitRange]{
	name:    "LimitRange",
	invalid: meshv1.ReasonLimitRangeInvalid,
	source:  "the landing zone's limitRange",
	newObj:  func() *corev1.LimitRange { return &corev1.LimitRange{} },
	list: func(ctx context.Context, c client.Reader, namespace string) ([]*corev1.LimitRange, error) {
		var list corev1.LimitRangeList
		err := c.List(ctx, &list, managedIn(namespace)...)
		return pointers(list.Items), err
	},
	spec:    func(obj *corev1.LimitRange) any { return &obj.Spec },
	setSpec: func(obj, want *corev1.LimitRange) { obj.Spec = *want.Spec.DeepCopy() },
}

// reconcileLimitRange converges the LimitRange meshproject-limits to the
// zone's limitRange.
func (r *MeshProjectReconciler) reconcileLimitRange(ctx context.Context, s *scope) error {
	if !s.baseline {
		return nil
	}
	var wants []*corev1.LimitRange
	if s.zone != nil && s.zone.Spec.LimitRange != nil && len(s.zone.Spec.LimitRange.Limits) > 0 {
		spec := s.zone.Spec.LimitRange.CoreV1()
		defaultLimitRange(&spec)
		wants = append(wants, &corev1.LimitRange{ObjectMeta: baselineMeta(s, LimitRangeName), Spec: spec})
	}
	return converge(ctx, r, s, limitRanges, wants)
}

// defaultLimitRange applies the API server's defaults (SetDefaults_LimitRangeItem
// in k8s.io/kubernetes/pkg/apis/core/v1), so that the desired spec equals
// the stored one and a converged LimitRange costs no write.
func defaultLimitRange(spec *corev1.LimitRangeSpec) {
	for i := range spec.Limits {
		item := &spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		// A missing default limit is the max; a missing default request
		// the default limit, else the min.
		for k, v := range item.Max {
			if _, ok := item.Default[k]; !ok {
				item.Default[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Default {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Min {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
	}
}
