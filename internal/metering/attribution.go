package metering

import "github.com/meshcloud/meshstack-operator/internal/metering/attribution"

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
