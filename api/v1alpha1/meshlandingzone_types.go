package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LandingZoneRoleMapping maps one meshProject role to the ClusterRoles its
// RoleBindings refer to: one RoleBinding per ClusterRole.
type LandingZoneRoleMapping struct {
	// role is the meshProject role, as in MeshProject spec.roleBindings.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Role string `json:"role"`

	// clusterRoles are the ClusterRoles the role grants. The operator may
	// only bind a ClusterRole listed in the resourceNames of its bind rule.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	ClusterRoles []ClusterRoleName `json:"clusterRoles"`
}

// ClusterRoleName is the name of a ClusterRole.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..' && !self.contains('/') && !self.contains('%')",message="must be a ClusterRole name: not '.' or '..', without '/' or '%'"
type ClusterRoleName string

// LandingZoneNetworkPolicy is one NetworkPolicy every namespace of the zone
// gets, named "meshproject-<name>".
type LandingZoneNetworkPolicy struct {
	// name identifies the policy within the zone.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// spec is the NetworkPolicy's spec.
	// +required
	Spec networkingv1.NetworkPolicySpec `json:"spec"`
}

// MeshLandingZoneSpec is the baseline of every project in the zone.
type MeshLandingZoneSpec struct {
	// roleMappings map meshProject roles to ClusterRoles for the projects of
	// this zone. When set, they replace the operator's --role-mapping for
	// them; a role of a project that is not listed here is reported as
	// UnknownRole.
	// +optional
	// +listType=map
	// +listMapKey=role
	// +kubebuilder:validation:MaxItems=32
	RoleMappings []LandingZoneRoleMapping `json:"roleMappings,omitempty"`

	// namespaceLabels are put on every namespace of the zone, for example
	// Pod Security Admission levels. The operator's own keys
	// (app.kubernetes.io/managed-by and anything under meshcloud.io/) are
	// not allowed.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="namespaceLabels keys must be valid label keys: an optional DNS subdomain prefix and '/', then at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k != 'app.kubernetes.io/managed-by' && !k.startsWith('meshcloud.io/') && !k.matches('^[^/]*[.]meshcloud[.]io/'))",message="namespaceLabels must not set the operator's own labels: app.kubernetes.io/managed-by and keys under meshcloud.io/"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$'))",message="namespaceLabels values must be valid label values: at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	NamespaceLabels map[string]LabelValue `json:"namespaceLabels,omitempty"`

	// resourceQuota is the spec of the ResourceQuota "meshproject-quota" in
	// every namespace of the zone. A project's spec.quota is merged over
	// its hard limits, key by key.
	// +optional
	ResourceQuota *ResourceQuotaSpec `json:"resourceQuota,omitempty"`

	// maxQuota is the ceiling of a project's spec.quota, per resource. A
	// resource without a ceiling here may be set to any value.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="maxQuota keys must be resource names such as requests.cpu, limits.memory, pods or count/deployments.apps"
	MaxQuota corev1.ResourceList `json:"maxQuota,omitempty"`

	// limitRange is the spec of the LimitRange "meshproject-limits" in every
	// namespace of the zone.
	// +optional
	LimitRange *LimitRangeSpec `json:"limitRange,omitempty"`

	// networkPolicies become one NetworkPolicy "meshproject-<name>" each in
	// every namespace of the zone. NetworkPolicies the tenants make
	// themselves are left alone.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	NetworkPolicies []LandingZoneNetworkPolicy `json:"networkPolicies,omitempty"`

	// disabled keeps new projects out of the zone: a project that does not
	// use it yet and names it reports LandingZoneDisabled. Projects already
	// in the zone keep it.
	// +optional
	// +kubebuilder:default=false
	Disabled bool `json:"disabled,omitempty"`

	// InvalidQuantities lists the entries of resourceQuota, maxQuota and
	// limitRange that were stored but are not quantities: decoding leaves
	// them out instead of failing (see MeshProjectSpec.InvalidQuantities).
	// Never serialized.
	InvalidQuantities []string `json:"-"`
}

// LabelValue is a Kubernetes label value.
// +kubebuilder:validation:MaxLength=63
type LabelValue string

// MaxListedProjects caps status.projectNames of a MeshLandingZone.
const MaxListedProjects = 50

// MeshLandingZoneStatus is the observed state of a MeshLandingZone.
type MeshLandingZoneStatus struct {
	// projects counts the MeshProjects in the zone: those naming it and, for
	// the operator's --default-landing-zone, those naming none.
	// +optional
	Projects int32 `json:"projects"`

	// projectNames lists, sorted, the first 50 of those MeshProjects. While
	// any is left, the finalizer meshcloud.io/landing-zone-protection keeps
	// a deleted zone.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=253
	ProjectNames []string `json:"projectNames,omitempty"`

	// observedGeneration is the generation the operator last counted for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// MeshLandingZone is the baseline of a class of projects: how meshProject
// roles map to ClusterRoles, and the ResourceQuota, LimitRange,
// NetworkPolicies and namespace labels of every project in it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mlz,categories=meshcloud
// +kubebuilder:printcolumn:name="Projects",type=integer,JSONPath=`.status.projects`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshLandingZone struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec MeshLandingZoneSpec `json:"spec,omitempty"`

	// +optional
	Status MeshLandingZoneStatus `json:"status,omitempty"`
}

// MeshLandingZoneList is a list of MeshLandingZones.
// +kubebuilder:object:root=true
type MeshLandingZoneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshLandingZone `json:"items"`
}
