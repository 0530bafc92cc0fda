// Package v1alpha1 contains the meshcloud.io/v1alpha1 API: the MeshProject
// resource that the replicator turns into a namespace with RoleBindings, and
// the MeshLandingZone resource, the baseline of a class of projects.
// +kubebuilder:object:generate=true
// +groupName=meshcloud.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "meshcloud.io", Version: "v1alpha1"}

	// SchemeBuilder registers this API's types with a scheme. It is
	// apimachinery's runtime.SchemeBuilder: controller-runtime's
	// scheme.Builder, which the kubebuilder scaffold uses, is deprecated
	// because an api package should depend on little beyond apimachinery.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers every kind of this API and its list under
// GroupVersion, as scheme.Builder.Register did.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&MeshProject{}, &MeshProjectList{},
		&MeshLandingZone{}, &MeshLandingZoneList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
