package usage

import "github.com/meshcloud/meshstack-operator/internal/metering/attribution"

// Attribute sets the attribution of every namespace that has usage in the
// pass (of returns it) and, with exclude, drops the usage of those that are
// not attributed.
func (p *Pass) Attribute(of func(namespace string) *attribution.Attribution, exclude bool) {
	for _, byNS := range p.usage {
		for ns, u := range byNS {
			u.Attribution = of(ns)
			if exclude && u.Attribution.By == "" {
				delete(byNS, ns)
			}
		}
	}
}

// HasUsage reports whether namespace has usage in the pass.
func (p *Pass) HasUsage(namespace string) bool {
	for _, byNS := range p.usage {
		if _, ok := byNS[namespace]; ok {
			return true
		}
	}
	return false
}
