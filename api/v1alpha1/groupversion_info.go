// Package v1alpha1 contains the meshcloud.io/v1alpha1 API: the MeshProject
// resource that the replicator turns into a namespace with RoleBindings, and
// the MeshLandingZone resource, the baseline of a class of projects.
// +kubebuilder:object:generate=true
// +groupName=meshcloud.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "meshcloud.io", Version: "v1alpha1"}

	// SchemeBuilder registers this API's types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
