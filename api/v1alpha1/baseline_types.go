package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// The landing zone's ResourceQuota and LimitRange specs are core/v1's, field
// for field and in the same JSON, with bounds on every list and map: the API
// server checks each quantity in them with a CEL rule (see hack/crdgen), and
// without bounds the estimated cost of those rules exceeds the CRD's budget.
// CoreV1 returns the core/v1 spec the operator writes.

// ResourceQuotaSpec is a core/v1 ResourceQuotaSpec with bounds.
type ResourceQuotaSpec struct {
	// hard is the set of desired hard limits for each named resource.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="resourceQuota.hard keys must be resource names such as requests.cpu, limits.memory, pods or count/deployments.apps"
	Hard corev1.ResourceList `json:"hard,omitempty"`

	// scopes filter what the quota tracks; each must match.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Type=string
	// +kubebuilder:validation:items:MaxLength=63
	Scopes []corev1.ResourceQuotaScope `json:"scopes,omitempty"`

	// scopeSelector filters what the quota tracks by scope expressions.
	// +optional
	ScopeSelector *ScopeSelector `json:"scopeSelector,omitempty"`
}

// ScopeSelector is a core/v1 ScopeSelector with bounds.
type ScopeSelector struct {
	// matchExpressions are ANDed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	MatchExpressions []ScopedResourceSelectorRequirement `json:"matchExpressions,omitempty"`
}

// ScopedResourceSelectorRequirement is a core/v1
// ScopedResourceSelectorRequirement with bounds.
type ScopedResourceSelectorRequirement struct {
	// scopeName is the name of the scope the selector applies to.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=63
	ScopeName corev1.ResourceQuotaScope `json:"scopeName"`
	// operator is In, NotIn, Exists or DoesNotExist.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=63
	Operator corev1.ScopeSelectorOperator `json:"operator"`
	// values for In and NotIn; empty for Exists and DoesNotExist.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	Values []string `json:"values,omitempty"`
}

// LimitRangeSpec is a core/v1 LimitRangeSpec with bounds.
type LimitRangeSpec struct {
	// limits is the list of LimitRangeItem objects that are enforced.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Limits []LimitRangeItem `json:"limits"`
}

// LimitRangeItem is a core/v1 LimitRangeItem with bounds: at most 16
// resources in each map.
type LimitRangeItem struct {
	// type of resource that this limit applies to: Container, Pod or
	// PersistentVolumeClaim.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=63
	Type corev1.LimitType `json:"type"`
	// max usage constraints on this kind by resource name.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Max corev1.ResourceList `json:"max,omitempty"`
	// min usage constraints on this kind by resource name.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Min corev1.ResourceList `json:"min,omitempty"`
	// default resource requirement limit value by resource name if resource
	// limit is omitted.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Default corev1.ResourceList `json:"default,omitempty"`
	// defaultRequest is the default resource requirement request value by
	// resource name if resource request is omitted.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	DefaultRequest corev1.ResourceList `json:"defaultRequest,omitempty"`
	// maxLimitRequestRatio, if specified, is the named resource's maximum
	// ratio of limit to request.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	MaxLimitRequestRatio corev1.ResourceList `json:"maxLimitRequestRatio,omitempty"`
}

// CoreV1 returns a deep copy of s as a core/v1 ResourceQuotaSpec.
func (s *ResourceQuotaSpec) CoreV1() corev1.ResourceQuotaSpec {
	out := corev1.ResourceQuotaSpec{Hard: s.Hard.DeepCopy()}
	if s.Scopes != nil {
		out.Scopes = append([]corev1.ResourceQuotaScope{}, s.Scopes...)
	}
	if s.ScopeSelector != nil {
		out.ScopeSelector = &corev1.ScopeSelector{}
		for _, r := range s.ScopeSelector.MatchExpressions {
			r := corev1.ScopedResourceSelectorRequirement(*r.DeepCopy())
			out.ScopeSelector.MatchExpressions = append(out.ScopeSelector.MatchExpressions, r)
		}
	}
	return out
}

// CoreV1 returns a deep copy of s as a core/v1 LimitRangeSpec.
func (s *LimitRangeSpec) CoreV1() corev1.LimitRangeSpec {
	var out corev1.LimitRangeSpec
	for _, item := range s.Limits {
		out.Limits = append(out.Limits, corev1.LimitRangeItem(*item.DeepCopy()))
	}
	return out
}
