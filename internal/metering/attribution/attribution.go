// Package attribution says whose a namespace's usage is: the MeshProject
// whose namespace the replicator manages, read from the labels it puts
// there, or a guess from the namespace's name.
//
// Reading namespaces is beyond the seed's meshfed-metering ClusterRole, so
// it is a role of its own (the chart's metering.projectAttribution.enabled
// grants it):
//
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
package attribution

import (
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// How records are attributed to customers and projects
// (--metering-attribution).
const (
	// AttributionProject reads the labels the replicator puts on the
	// namespaces it manages; it needs the optional role that lets the
	// metering identity list namespaces. Every other namespace is
	// unattributed.
	AttributionProject = "project"
	// AttributionNamespaceName splits names of the form
	// <customer>-<project>, never those of kube-*, openshift-* and the
	// operator's own namespace. It needs no role, and is a guess: a
	// namespace someone else named acme-shop bills customer acme.
	AttributionNamespaceName = "namespace-name"
)

// What the meter does with the usage of namespaces that are not attributed
// (--metering-unmanaged-namespaces).
const (
	UnmanagedInclude = "include"
	UnmanagedExclude = "exclude"
)

// Values of a record's attributedBy.
const (
	AttributedByProject       = "project"
	AttributedByNamespaceName = "namespaceName"
)

// Attribution says whose a namespace's usage is. The meter takes it during
// the pass that counts the usage and keeps it with the window in the
// checkpoint, so that a window delivered again carries the same
// attribution, whatever happened to the namespace since. It is never
// changed once made: windows share it.
type Attribution struct {
	// By is AttributedByProject, AttributedByNamespaceName, or empty for a
	// namespace that is not attributed.
	By          string            `json:"by,omitempty"`
	Customer    string            `json:"customer,omitempty"`
	Project     string            `json:"project,omitempty"`
	LandingZone string            `json:"landingZone,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Unattributed is the attribution of a namespace that is nobody's.
var Unattributed = &Attribution{}

// Validate checks --metering-attribution and
// --metering-unmanaged-namespaces.
func Validate(mode, unmanaged string) error {
	if mode != AttributionProject && mode != AttributionNamespaceName {
		return fmt.Errorf("--metering-attribution must be %s or %s, not %q", AttributionProject, AttributionNamespaceName, mode)
	}
	if unmanaged != UnmanagedInclude && unmanaged != UnmanagedExclude {
		return fmt.Errorf("--metering-unmanaged-namespaces must be %s or %s, not %q", UnmanagedInclude, UnmanagedExclude, unmanaged)
	}
	return nil
}

// FromProject is the attribution of a namespace the replicator
// manages, from the labels it puts there, and nil for any other namespace.
// Only the replicator may set these marks (the chart's admission policies
// refuse them to everyone else).
func FromProject(ns metav1.Object) *Attribution {
	labels := ns.GetLabels()
	customer, project := labels[meshv1.LabelCustomer], labels[meshv1.LabelProject]
	if labels[meshv1.LabelManagedBy] != meshv1.ManagedByValue || ns.GetAnnotations()[meshv1.AnnotationMeshProject] == "" ||
		customer == "" || project == "" {
		return nil
	}
	a := &Attribution{
		By:          AttributedByProject,
		Customer:    strings.Clone(customer),
		Project:     strings.Clone(project),
		LandingZone: strings.Clone(labels[meshv1.LabelLandingZone]),
	}
	for k, v := range labels {
		if tag, ok := strings.CutPrefix(k, meshv1.TagLabelPrefix); ok {
			if a.Tags == nil {
				a.Tags = map[string]string{}
			}
			a.Tags[strings.Clone(tag)] = strings.Clone(v)
		}
	}
	return a
}

// FromName attributes a namespace by its name, as the releases
// before the role did, except names that are plainly not projects: kube-*,
// openshift-* and the operator's own namespace.
func FromName(namespace, releaseNamespace string) *Attribution {
	if strings.HasPrefix(namespace, "kube-") || strings.HasPrefix(namespace, "openshift-") || namespace == releaseNamespace {
		return Unattributed
	}
	customer, project, ok := SplitIdentifiers(namespace)
	if !ok {
		return Unattributed
	}
	return &Attribution{By: AttributedByNamespaceName, Customer: customer, Project: project}
}

// identifierPattern is the seed's rule for customer and project identifiers
// (lowercase alphanumerics) joined by the one dash the replicator puts
// between them. Neither part can contain a dash, so the split is unambiguous.
var identifierPattern = regexp.MustCompile(`^([a-z0-9]+)-([a-z0-9]+)$`)

// SplitIdentifiers returns the customer and project identifiers of a
// namespace named <customer>-<project>, and ok=false for any other name.
func SplitIdentifiers(namespace string) (customer, project string, ok bool) {
	m := identifierPattern.FindStringSubmatch(namespace)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
