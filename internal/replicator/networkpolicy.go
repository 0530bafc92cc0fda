package replicator

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// NetworkPolicyName is the name of the NetworkPolicy of a zone's policy.
func NetworkPolicyName(policy string) string { return "meshproject-" + policy }

var networkPolicies = kind[*networkingv1.NetworkPolicy]{
	name:    "NetworkPolicy",
	invalid: meshv1.ReasonNetworkPolicyInvalid,
	source:  "the landing zone's networkPolicies",
	newObj:  func() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} },
	list: func(ctx context.Context, c client.Reader, namespace string) ([]*networkingv1.NetworkPolicy, error) {
		var list networkingv1.NetworkPolicyList
		err := c.List(ctx, &list, managedIn(namespace)...)
		return pointers(list.Items), err
	},
	spec:    func(obj *networkingv1.NetworkPolicy) any { return &obj.Spec },
	setSpec: func(obj, want *networkingv1.NetworkPolicy) { obj.Spec = *want.Spec.DeepCopy() },
}

// reconcileNetworkPolicies converges one NetworkPolicy meshproject-<name>
// per policy of the zone. The tenant's own NetworkPolicies have no
// operator marks and are never touched.
func (r *MeshProjectReconciler) reconcileNetworkPolicies(ctx context.Context, s *scope) error {
	if !s.baseline {
		return nil
	}
	var wants []*networkingv1.NetworkPolicy
	if s.zone != nil {
		for _, p := range s.zone.Spec.NetworkPolicies {
			spec := p.Spec.DeepCopy()
			defaultNetworkPolicy(spec)
			wants = append(wants, &networkingv1.NetworkPolicy{ObjectMeta: baselineMeta(s, NetworkPolicyName(p.Name)), Spec: *spec})
		}
	}
	return converge(ctx, r, s, networkPolicies, wants)
}

// defaultNetworkPolicy applies the API server's defaults
// (k8s.io/kubernetes/pkg/apis/networking/v1), so that the desired spec
// equals the stored one: policyTypes from the rules, TCP ports.
func defaultNetworkPolicy(spec *networkingv1.NetworkPolicySpec) {
	if len(spec.PolicyTypes) == 0 {
		spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(spec.Egress) > 0 {
			spec.PolicyTypes = append(spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	tcp := func(ports []networkingv1.NetworkPolicyPort) {
		for i := range ports {
			if ports[i].Protocol == nil {
				p := corev1.ProtocolTCP
				ports[i].Protocol = &p
			}
		}
	}
	for i := range spec.Ingress {
		tcp(spec.Ingress[i].Ports)
	}
	for i := range spec.Egress {
		tcp(spec.Egress[i].Ports)
	}
}
