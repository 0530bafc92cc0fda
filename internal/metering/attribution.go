package metering

import "github.com/meshcloud/meshstack-operator/internal/metering/attribution"

// Attribution is whose a namespace's usage is (see package attribution).
type Attribution = attribution.Attribution

// The attribution settings and values, as package attribution names them.
const (
	AttributionProject        = attribution.AttributionProject
	AttributionNamespaceName  = attribution.AttributionNamespaceName
	UnmanagedInclude          = attribution.UnmanagedInclude
	UnmanagedExclude          = attribution.UnmanagedExclude
	AttributedByProject       = attribution.AttributedByProject
	AttributedByNamespaceName = attribution.AttributedByNamespaceName
)

// ValidateAttribution checks --metering-attribution and
// --metering-unmanaged-namespaces.
func ValidateAttribution(mode, unmanaged string) error { return attribution.Validate(mode, unmanaged) }

// SplitIdentifiers returns the customer and project identifiers of a
// namespace named <customer>-<project>, and ok=false for any other name.
func SplitIdentifiers(namespace string) (customer, project string, ok bool) {
	return attribution.SplitIdentifiers(namespace)
}

// Attribute sets the attribution of every namespace that has usage in the
// pass (of returns it) and, with exclude, drops the usage of those that are
// not attributed.
func (p *Pass) Attribute(of func(namespace string) *Attribution, exclude bool) {
	for _, byNS := range p.usage {
		for ns, u := range byNS {
			u.Attribution = of(ns)
			if exclude && u.Attribution.By == "" {
				delete(byNS, ns)
			}
		}
	}
}

// hasUsage reports whether namespace has usage in the pass.
func (p *Pass) hasUsage(namespace string) bool {
	for _, byNS := range p.usage {
		if _, ok := byNS[namespace]; ok {
			return true
		}
	}
	return false
}
