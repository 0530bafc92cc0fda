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
	name:    "ResourceQuota",
	invalid: meshv1.ReasonResourceQuotaInvalid,
	source:  "spec.quota or the landing zone's resourceQuota",
	newObj:  func() *corev1.ResourceQuota { return &corev1.ResourceQuota{} },
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
// A quota that raises a limit beyond what the zone allows is not applied:
// the last accepted quota stays in force (or, for a new namespace, the
// zone's own). A merged quota the API server refuses falls back to the
// zone's own, so that a namespace in a zone is never without its quota.
func (r *MeshProjectReconciler) reconcileQuota(ctx context.Context, s *scope) error {
	if !s.baseline {
		return nil
	}
	var zoneSpec corev1.ResourceQuotaSpec
	if s.zone != nil && s.zone.Spec.ResourceQuota != nil {
		zoneSpec = s.zone.Spec.ResourceQuota.CoreV1()
	}
	if above := s.quotaAboveMaximum(); len(above) > 0 {
		s.out.block(meshv1.ReasonQuotaAboveMaximum, "spec.quota raises limits beyond what landing zone %q allows: %s; the last accepted quota stays in force",
			s.zone.Name, strings.Join(above, ", "))
		existing := &corev1.ResourceQuota{}
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.ns.Name, Name: ResourceQuotaName}, existing)
		if err == nil && existing.Annotations[meshv1.AnnotationMeshProject] == s.project.Name {
			return nil
		}
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading ResourceQuota %s/%s: %w", s.ns.Name, ResourceQuotaName, err)
		}
		return converge(ctx, r, s, resourceQuotas, s.quotaWants(zoneSpec))
	}
	if len(s.project.Spec.Quota) == 0 {
		return converge(ctx, r, s, resourceQuotas, s.quotaWants(zoneSpec))
	}
	spec := *zoneSpec.DeepCopy()
	if spec.Hard == nil {
		spec.Hard = corev1.ResourceList{}
	}
	for k, v := range s.project.Spec.Quota {
		spec.Hard[k] = v.DeepCopy()
	}
	problems := len(s.out.problems)
	if err := converge(ctx, r, s, resourceQuotas, s.quotaWants(spec)); err != nil || !s.out.blockedSince(problems, meshv1.ReasonResourceQuotaInvalid) {
		return err
	}
	refused := s.out.problems[problems:]
	s.out.problems = s.out.problems[:problems]
	for _, p := range refused {
		s.out.block(p.reason, "%s; the landing zone's own quota applies instead", p.message)
	}
	return converge(ctx, r, s, resourceQuotas, s.quotaWants(zoneSpec))
}

// quotaWants is the project's ResourceQuota with spec, or none when spec
// has no hard limits.
func (s *scope) quotaWants(spec corev1.ResourceQuotaSpec) []*corev1.ResourceQuota {
	if len(spec.Hard) == 0 {
		return nil
	}
	return []*corev1.ResourceQuota{{ObjectMeta: baselineMeta(s, ResourceQuotaName), Spec: spec}}
}

// quotaAboveMaximum lists the resources of spec.quota that raise a limit
// beyond what the zone allows. A project may lower any limit and add
// limits the zone does not set; it may raise a limit of the zone's
// resourceQuota only up to the zone's maxQuota for that resource, and
// not at all where the zone sets no maximum.
func (s *scope) quotaAboveMaximum() []string {
	if s.zone == nil {
		return nil
	}
	var hard corev1.ResourceList
	if s.zone.Spec.ResourceQuota != nil {
		hard = s.zone.Spec.ResourceQuota.Hard
	}
	var above []string
	for _, name := range slices.Sorted(maps.Keys(s.project.Spec.Quota)) {
		want := s.project.Spec.Quota[name]
		zoneLimit, limited := hard[name]
		if limited && want.Cmp(zoneLimit) <= 0 {
			continue
		}
		if maximum, ok := s.zone.Spec.MaxQuota[name]; ok {
			if want.Cmp(maximum) > 0 {
				above = append(above, fmt.Sprintf("%s %s is above the maximum %s", name, want.String(), maximum.String()))
			}
		} else if limited {
			above = append(above, fmt.Sprintf("%s %s is above the zone's %s, and the zone sets no maximum for it", name, want.String(), zoneLimit.String()))
		}
	}
	return above
}
