package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DeletionPolicy says what happens to a MeshProject's namespace when the
// MeshProject is deleted.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the namespace, and so everything in it.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyRetain leaves the namespace and its contents in place and
	// stops managing them.
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// Identifier is a meshStack customer or project identifier. meshStack
// restricts both to lowercase alphanumerics so that "<customer>-<project>"
// is always a valid, unambiguous namespace name.
// +kubebuilder:validation:MaxLength=62
// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]+$')",message="must be non-empty and contain only lowercase letters (a-z) and digits (0-9)"
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="is immutable: delete and recreate the MeshProject to change it"
type Identifier string

// SubjectName is an OIDC user or group name as the identity provider issues
// it, before the API server's prefix is added.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="!self.startsWith('system:')",message="must not start with 'system:': that prefix is reserved for Kubernetes' own users and groups"
type SubjectName string

// ProjectRoleBinding gives a meshProject role to users and groups.
type ProjectRoleBinding struct {
	// role is the meshProject role, for example admin, edit or view. The
	// operator's --role-mapping flag maps it to a ClusterRole.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Role string `json:"role"`

	// users are OIDC user names (the token's "sub" claim). The operator binds
	// them as "<oidc-username-prefix><user>".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	Users []SubjectName `json:"users,omitempty"`

	// groups are OIDC group names (the token's groups claim). The operator
	// binds them as "<oidc-groups-prefix><group>".
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	Groups []SubjectName `json:"groups,omitempty"`
}

// MeshProjectSpec is the desired state of a MeshProject.
// +kubebuilder:validation:XValidation:rule="size(self.customerIdentifier) + size(self.projectIdentifier) < 63",message="the namespace name <customerIdentifier>-<projectIdentifier> must be at most 63 characters"
type MeshProjectSpec struct {
	// customerIdentifier is the meshCustomer's identifier. Immutable.
	// +required
	CustomerIdentifier Identifier `json:"customerIdentifier"`

	// projectIdentifier is the meshProject's identifier. Immutable.
	// +required
	ProjectIdentifier Identifier `json:"projectIdentifier"`

	// roleBindings lists, per meshProject role, who holds it.
	// +optional
	// +listType=map
	// +listMapKey=role
	// +kubebuilder:validation:MaxItems=32
	RoleBindings []ProjectRoleBinding `json:"roleBindings,omitempty"`

	// tags are copied onto the namespace as labels "tags.meshcloud.io/<key>".
	// Keys must be valid label names (at most 63 characters: letters, digits,
	// '-', '_' and '.', starting and ending with a letter or digit), values
	// valid label values.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 63 && k.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="tag keys must be valid label names: at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$'))",message="tag values must be valid label values: at most 63 characters, letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	Tags map[string]TagValue `json:"tags,omitempty"`

	// deletionPolicy says what happens to the namespace when the MeshProject
	// is deleted: Delete (the default) deletes it with everything in it;
	// Retain leaves it and its RoleBindings in place, unmanaged.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// landingZone names the MeshLandingZone whose baseline (role mappings,
	// ResourceQuota, LimitRange, NetworkPolicies, namespace labels) the
	// project gets. Empty: the operator's --default-landing-zone, if any.
	// May change: the project then gets the other zone's objects.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be the name of a MeshLandingZone: lowercase letters, digits, '-' and '.'"
	LandingZone string `json:"landingZone,omitempty"`

	// quota overrides hard limits of the landing zone's ResourceQuota, key
	// by key, up to the zone's maxQuota.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'))",message="quota keys must be resource names such as requests.cpu, limits.memory, pods or count/deployments.apps"
	Quota corev1.ResourceList `json:"quota,omitempty"`

	// InvalidQuantities lists the quota entries that were stored but are
	// not quantities (stored before the schema checked them): decoding
	// leaves them out of Quota instead of failing, so that one such object
	// cannot stop an informer from listing all the others. Never
	// serialized.
	InvalidQuantities []string `json:"-"`
}

// TagValue is the value of a tag; it becomes a label value.
// +kubebuilder:validation:MaxLength=63
type TagValue string

// MeshProjectStatus is the observed state of a MeshProject.
type MeshProjectStatus struct {
	// namespace is the name of the namespace the project owns.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// namespaceUID is the UID of the namespace the operator created for
	// the project. Only that namespace is the project's: another namespace
	// of the same name is a NamespaceConflict whatever labels or
	// annotations it carries, and only this one is ever deleted or
	// released.
	// +optional
	NamespaceUID types.UID `json:"namespaceUID,omitempty"`

	// landingZone names the MeshLandingZone whose baseline the project last
	// got. A disabled zone keeps serving the projects it names here.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	LandingZone string `json:"landingZone,omitempty"`

	// observedGeneration is the generation the operator last reconciled
	// without a transient error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the project's state: one per step of a pass
	// (LandingZoneReady, NamespaceReady, RoleBindingsReady, BaselineReady)
	// and Ready, True when all of them are; see meshproject_conditions.go.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MeshProject is a meshStack project on this cluster: a namespace named
// "<customerIdentifier>-<projectIdentifier>" and RoleBindings that give the
// project's users and groups their roles in it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mp;meshproj,categories=meshcloud
// +kubebuilder:printcolumn:name="Customer",type=string,JSONPath=`.spec.customerIdentifier`
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.projectIdentifier`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.namespace`
// +kubebuilder:printcolumn:name="Landing Zone",type=string,JSONPath=`.status.landingZone`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshProject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MeshProjectSpec `json:"spec"`

	// +optional
	Status MeshProjectStatus `json:"status,omitempty"`
}

// NamespaceName is the name of the namespace this project owns.
func (p *MeshProject) NamespaceName() string {
	return string(p.Spec.CustomerIdentifier) + "-" + string(p.Spec.ProjectIdentifier)
}

// MeshProjectList is a list of MeshProjects.
// +kubebuilder:object:root=true
type MeshProjectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshProject `json:"items"`
}
