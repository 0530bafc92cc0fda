package replicator_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
)

// zoneBuilder builds MeshLandingZones with names unique to the run.
type zoneBuilder struct{ z *meshv1.MeshLandingZone }

func aZone() *zoneBuilder {
	n := projectSeq.Add(1)
	return &zoneBuilder{z: &meshv1.MeshLandingZone{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("zone%d-%d", n, time.Now().UnixNano()%100000),
	}}}
}

func (b *zoneBuilder) mapping(role string, clusterRoles ...string) *zoneBuilder {
	m := meshv1.LandingZoneRoleMapping{Role: role}
	for _, cr := range clusterRoles {
		m.ClusterRoles = append(m.ClusterRoles, meshv1.ClusterRoleName(cr))
	}
	b.z.Spec.RoleMappings = append(b.z.Spec.RoleMappings, m)
	return b
}

// podSecurity labels the zone's namespaces with the Pod Security level
// enforced in them.
func (b *zoneBuilder) podSecurity(level string) *zoneBuilder {
	if b.z.Spec.NamespaceLabels == nil {
		b.z.Spec.NamespaceLabels = map[string]meshv1.LabelValue{}
	}
	b.z.Spec.NamespaceLabels[psaEnforce] = meshv1.LabelValue(level)
	return b
}

// hard sets resourceQuota.hard from name/quantity pairs.
func (b *zoneBuilder) hard(pairs ...string) *zoneBuilder {
	b.z.Spec.ResourceQuota = &meshv1.ResourceQuotaSpec{Hard: resources(pairs...)}
	return b
}

func (b *zoneBuilder) maxQuota(pairs ...string) *zoneBuilder {
	b.z.Spec.MaxQuota = resources(pairs...)
	return b
}

// containerDefaults sets a LimitRange with default limits and requests.
func (b *zoneBuilder) containerDefaults(limitCPU, limitMemory, requestCPU, requestMemory string) *zoneBuilder {
	b.z.Spec.LimitRange = &meshv1.LimitRangeSpec{Limits: []meshv1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Default:        resources("cpu", limitCPU, "memory", limitMemory),
		DefaultRequest: resources("cpu", requestCPU, "memory", requestMemory),
	}}}
	return b
}

func (b *zoneBuilder) policy(name string, spec networkingv1.NetworkPolicySpec) *zoneBuilder {
	b.z.Spec.NetworkPolicies = append(b.z.Spec.NetworkPolicies, meshv1.LandingZoneNetworkPolicy{Name: name, Spec: spec})
	return b
}

func (b *zoneBuilder) build() *meshv1.MeshLandingZone { return b.z.DeepCopy() }

func (b *zoneBuilder) create() *meshv1.MeshLandingZone {
	z := b.build()
	ExpectWithOffset(1, fw.Client.Create(ctx, z)).To(Succeed())
	return z
}

// denyIngress is a policy that denies all ingress; allowDNS one with ports
// and no policyTypes, so that the API server's defaults apply.
var (
	denyIngress = networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}
	allowDNS    = networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
		Ports: []networkingv1.NetworkPolicyPort{{Port: ptrTo(intstr.FromInt32(53))}},
	}}}
)

func (b *projectBuilder) zone(name string) *projectBuilder { b.Zone(name); return b }

func (b *projectBuilder) quota(pairs ...string) *projectBuilder {
	b.Quota(resources(pairs...))
	return b
}

func resources(pairs ...string) corev1.ResourceList {
	list := corev1.ResourceList{}
	for i := 0; i+1 < len(pairs); i += 2 {
		list[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return list
}

// updateZone re-reads z, applies mutate and updates it, retrying on conflicts.
func updateZone(z *meshv1.MeshLandingZone, mutate func(*meshv1.MeshLandingZone)) {
	GinkgoHelper()
	updateObject(z, mutate)
}

func getQuota(g Gomega, p *meshv1.MeshProject) *corev1.ResourceQuota {
	q := &corev1.ResourceQuota{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.ResourceQuotaName}, q)).To(Succeed())
	return q
}

func getLimitRange(g Gomega, p *meshv1.MeshProject) *corev1.LimitRange {
	lr := &corev1.LimitRange{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.LimitRangeName}, lr)).To(Succeed())
	return lr
}

func getNetworkPolicy(g Gomega, p *meshv1.MeshProject, name string) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{}
	g.Expect(fw.Client.Get(ctx, client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.NetworkPolicyName(name)}, np)).To(Succeed())
	return np
}

// networkPolicyOf is the (unread) NetworkPolicy of the zone's policy name in
// the project's namespace.
func networkPolicyOf(p *meshv1.MeshProject, name string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: p.NamespaceName(), Name: replicator.NetworkPolicyName(name)}}
}

// expectGone asserts that obj (by its key) does not exist.
func expectGone(g Gomega, obj client.Object) {
	err := fw.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s still exists (%v)", obj, client.ObjectKeyFromObject(obj), err)
}

// expectMarked asserts the operator's marks on a baseline object.
func expectMarked(g Gomega, obj client.Object, p *meshv1.MeshProject, zone string) {
	g.Expect(obj.GetLabels()).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue))
	g.Expect(obj.GetLabels()).To(HaveKeyWithValue(meshv1.LabelLandingZone, zone))
	g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))
}

// hardOf returns a quota's hard limits as strings, for readable diffs.
func hardOf(q *corev1.ResourceQuota) map[string]string {
	out := map[string]string{}
	for k, v := range q.Spec.Hard {
		out[string(k)] = v.String()
	}
	return out
}

// can asks the API server whether user may do verb on group/resource in namespace.
func can(g Gomega, user, verb, group, res, namespace string) bool {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Group: group, Resource: res},
	}}
	g.Expect(fw.Client.Create(ctx, sar)).To(Succeed())
	return sar.Status.Allowed
}

func ptrTo[T any](v T) *T { return &v }
