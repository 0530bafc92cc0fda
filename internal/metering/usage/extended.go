package usage

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// extendedResource is what a pod reserves of one extended resource, such
// as nvidia.com/gpu.
type extendedResource struct {
	name           corev1.ResourceName
	request, limit float64
}

// isExtendedResourceName is Kubernetes' rule for an extended resource
// (k8s.io/kubernetes/pkg/apis/core/v1/helper.IsExtendedResourceName, which
// no published module exports): a name with a domain prefix outside
// kubernetes.io, not a quota's requests.* name. cpu, memory,
// ephemeral-storage and hugepages-* have no prefix. The API server has
// validated the names of a pod's resources already.
func isExtendedResourceName(name corev1.ResourceName) bool {
	s := string(name)
	return strings.Contains(s, "/") && !strings.Contains(s, "kubernetes.io/") && !strings.HasPrefix(s, "requests.")
}

// extendedResources lists the extended resources pod reserves, by its
// effective requests and limits (an extended resource cannot be
// overcommitted, so its request equals its limit, and the API server sets
// the request from the limit). Most pods have none, and cost no
// allocation.
func (p *Pass) extendedResources(pod *corev1.Pod, reqs, limits corev1.ResourceList) []extendedResource {
	var out []extendedResource
	add := func(name corev1.ResourceName) {
		for _, x := range out {
			if x.name == name {
				return
			}
		}
		out = append(out, extendedResource{
			name:    name,
			request: p.checkedQuantity(pod, "requests."+string(name), reqs, name, &maxBytesQuantity),
			limit:   p.checkedQuantity(pod, "limits."+string(name), limits, name, &maxBytesQuantity),
		})
	}
	for name := range reqs {
		if isExtendedResourceName(name) {
			add(name)
		}
	}
	for name := range limits {
		if isExtendedResourceName(name) {
			add(name)
		}
	}
	return out
}

// addExtended adds seconds of x to the usage.
func (u *Usage) addExtended(x extendedResource, seconds float64) {
	name := string(x.name)
	if _, ok := u.ExtendedResourceRequestSeconds[name]; !ok {
		// Clone the name: it points into the page of pods, which must not
		// outlive the page.
		name = strings.Clone(name)
	}
	if u.ExtendedResourceRequestSeconds == nil {
		u.ExtendedResourceRequestSeconds = map[string]float64{}
		u.ExtendedResourceLimitSeconds = map[string]float64{}
	}
	u.ExtendedResourceRequestSeconds[name] += x.request * seconds
	u.ExtendedResourceLimitSeconds[name] += x.limit * seconds
}
