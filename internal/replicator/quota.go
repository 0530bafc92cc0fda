package replicator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// ResourceQuotaName is the name of the project's ResourceQuota.
const ResourceQuotaName = "meshproject-quota"

var resourceQuotas = kind[*corev1.ResourceQuota]{
	name:     "ResourceQuota",
	conflict: ReasonResourceQuotaConflict,
	invalid:  ReasonResourceQuotaInvalid,
	source:   "spec.quota or the landing zone's resourceQuota",
	newObj:   func() *corev1.ResourceQuota { return &corev1.ResourceQuota{} },
	list: func(ctx context.Context, c client.Reader, namespace string) ([]*corev1.ResourceQuota, error) {
		var list corev1.ResourceQuotaList
		err := c.List(ctx, &list, managedIn(namespace)...)
		return pointers(list.Items), err
	},
	spec:    func(obj *corev1.ResourceQuota) any { return &obj.Spec },
	setSpec: func(obj, want *corev1.ResourceQuota) { obj.Spec = *want.Spec.DeepCopy() },
}

// reconcileQuota converges the ResourceQuota meshproject-quota: the zone's
// resourceQuota with the project's spec.quota merged over its hard limits.
// A quota above the zone's maxQuota is not applied: the last accepted
// quota stays in force (or, for a new namespace, the zone's own).
func (r *MeshProjectReconciler) reconcileQuota(ctx context.Context, s *scope) error {
	if !s.baseline {
		return nil
	}
	var spec corev1.ResourceQuotaSpec
	if s.zone != nil && s.zone.Spec.ResourceQuota != nil {
		spec = s.zone.Spec.ResourceQuota.CoreV1()
	}
	if above := s.quotaAboveMaximum(); len(above) > 0 {
		s.out.block(ReasonQuotaAboveMaximum, "spec.quota exceeds the maximum of landing zone %q: %s; the last accepted quota stays in force",
			s.zone.Name, strings.Join(above, ", "))
		existing := &corev1.ResourceQuota{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.ns.Name, Name: ResourceQuotaName}, existing)
		if err == nil && existing.Annotations[meshv1.AnnotationMeshProject] == s.project.Name {
			return nil
		}
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading ResourceQuota %s/%s: %w", s.ns.Name, ResourceQuotaName, err)
		}
	} else if len(s.project.Spec.Quota) > 0 {
		if spec.Hard == nil {
			spec.Hard = corev1.ResourceList{}
		}
		for k, v := range s.project.Spec.Quota {
			spec.Hard[k] = v.DeepCopy()
		}
	}
	var wants []*corev1.ResourceQuota
	if len(spec.Hard) > 0 {
		wants = append(wants, &corev1.ResourceQuota{ObjectMeta: baselineMeta(s, ResourceQuotaName), Spec: spec})
	}
	return converge(ctx, r, s, resourceQuotas, wants)
}

// quotaAboveMaximum lists the resources of spec.quota above the zone's
// maxQuota, as "<resource> <value> > <maximum>".
func (s *scope) quotaAboveMaximum() []string {
	if s.zone == nil {
		return nil
	}
	var above []string
	for _, name := range slices.Sorted(maps.Keys(s.project.Spec.Quota)) {
		want := s.project.Spec.Quota[name]
		if limit, ok := s.zone.Spec.MaxQuota[name]; ok && want.Cmp(limit) > 0 {
			above = append(above, fmt.Sprintf("%s %s is above the maximum %s", name, want.String(), limit.String()))
		}
	}
	return above
}
