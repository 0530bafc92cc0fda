package v1alpha1

// Labels and annotations the operator puts on what it creates. The
// annotation is the ownership mark: the operator only updates or deletes a
// namespace or RoleBinding whose AnnotationMeshProject names the MeshProject
// being reconciled. The managed-by label lets the operator's informers cache
// only the objects it manages.
const (
	// LabelManagedBy marks namespaces and RoleBindings the operator created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "meshstack-operator"

	// LabelCustomer carries spec.customerIdentifier on the namespace.
	LabelCustomer = "meshcloud.io/customer"
	// LabelProject carries spec.projectIdentifier on the namespace.
	LabelProject = "meshcloud.io/project"
	// LabelRole carries the meshProject role on a RoleBinding.
	LabelRole = "meshcloud.io/role"
	// TagLabelPrefix prefixes each spec.tags key on the namespace.
	TagLabelPrefix = "tags.meshcloud.io/"

	// AnnotationMeshProject names the owning MeshProject.
	AnnotationMeshProject = "meshcloud.io/meshproject"
	// AnnotationMeshProjectUID carries the UID of the MeshProject that
	// created a namespace. The namespace's own UID in the project's
	// status.namespaceUID is what makes it the project's; this annotation
	// only lets the operator recognise a namespace it created when it
	// stopped before it could record that UID. A UID exists only once its
	// MeshProject does, so a namespace made before the project cannot carry
	// it, and the chart's admission policy lets nobody else write it.
	AnnotationMeshProjectUID = "meshcloud.io/meshproject-uid"
	// LabelLandingZone names the MeshLandingZone a namespace's baseline (its
	// ResourceQuota, LimitRange, NetworkPolicies and zone labels) comes
	// from, on the namespace and on each of those objects.
	LabelLandingZone = "meshcloud.io/landing-zone"
	// AnnotationLandingZoneLabels lists, comma-separated, the namespace
	// labels the operator set from the landing zone, so that it can remove
	// them when the zone drops them.
	AnnotationLandingZoneLabels = "meshcloud.io/landing-zone-labels"

	// Finalizer lets the operator apply the deletion policy before a
	// MeshProject goes away.
	Finalizer = "meshcloud.io/replicator"
	// LandingZoneFinalizer keeps a MeshLandingZone while projects use it,
	// like kubernetes.io/pvc-protection.
	LandingZoneFinalizer = "meshcloud.io/landing-zone-protection"
)
