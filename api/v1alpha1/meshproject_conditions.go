package v1alpha1

// Condition types of a MeshProject. Each step of a pass reports its own
// condition; Ready summarises them. A step's condition is True (with the
// step's own reason) when the step converged, False (with the reason of
// its problem, or ReasonReconcileFailed for a transient error) when it
// found a problem, and Unknown (ReasonWaitingForLandingZone or
// ReasonWaitingForNamespace) when it did not run because an earlier step
// holds it back. Every condition carries the generation it was computed for.
const (
	// ReadyCondition is True when every step condition is True: the
	// namespace, every RoleBinding and the landing zone's baseline match
	// the spec. When it is False its reason is that of the first problem
	// the pass found (ReasonReconcileFailed for a transient error) and its
	// message lists all of them in one line.
	ReadyCondition = "Ready"
	// LandingZoneReadyCondition is True when the landing zone the project
	// names (or the default one, or none) can be applied.
	LandingZoneReadyCondition = "LandingZoneReady"
	// NamespaceReadyCondition is True when the project's namespace exists,
	// is the project's own and carries the operator's labels.
	NamespaceReadyCondition = "NamespaceReady"
	// RoleBindingsReadyCondition is True when every role of the spec is
	// bound through the ClusterRoles it maps to.
	RoleBindingsReadyCondition = "RoleBindingsReady"
	// BaselineReadyCondition is True when the landing zone's ResourceQuota,
	// LimitRange and NetworkPolicies are in the namespace as wanted
	// (none without a zone).
	BaselineReadyCondition = "BaselineReady"
)

// Reasons of a converged step (status True) and of a converged project.
const (
	// ReasonReconciled: Ready is True; every step converged.
	ReasonReconciled = "Reconciled"
	// ReasonLandingZoneResolved: the landing zone to apply (or none) is known.
	ReasonLandingZoneResolved = "LandingZoneResolved"
	// ReasonNamespaceReconciled: the namespace is the project's and marked.
	ReasonNamespaceReconciled = "NamespaceReconciled"
	// ReasonRoleBindingsReconciled: every role is bound as the spec says.
	ReasonRoleBindingsReconciled = "RoleBindingsReconciled"
	// ReasonBaselineReconciled: the landing zone's objects match.
	ReasonBaselineReconciled = "BaselineReconciled"
)

// Reasons of a step that did not run (status Unknown).
const (
	// ReasonWaitingForLandingZone: the landing zone named cannot be applied
	// now (see LandingZoneReady); the step waits for it and leaves what it
	// manages as it is.
	ReasonWaitingForLandingZone = "WaitingForLandingZone"
	// ReasonWaitingForNamespace: the step needs the project's namespace,
	// which is not usable (see NamespaceReady).
	ReasonWaitingForNamespace = "WaitingForNamespace"
)

// Reasons of a step's problem (status False), which Ready takes over when
// the problem is the first one of the pass. Their values are stable: users
// and alerts match them.
const (
	// ReasonReconcileFailed: a transient error; the pass is retried.
	ReasonReconcileFailed = "ReconcileFailed"

	// ReasonInvalidQuantity (LandingZoneReady): the project's spec.quota or
	// its zone holds a stored value that is not a quantity; it is left out
	// (the zone's own value applies) until the object is fixed.
	ReasonInvalidQuantity = "InvalidQuantity"
	// ReasonLandingZoneNotFound (LandingZoneReady): the project's landing
	// zone does not exist.
	ReasonLandingZoneNotFound = "LandingZoneNotFound"
	// ReasonLandingZoneDisabled (LandingZoneReady): the project names a
	// disabled zone it is not in yet.
	ReasonLandingZoneDisabled = "LandingZoneDisabled"
	// ReasonLandingZonesNotPermitted (LandingZoneReady): the operator's
	// identity lacks the landing-zone rights, and the project names a zone
	// or a quota.
	ReasonLandingZonesNotPermitted = "LandingZonesNotPermitted"
	// ReasonLandingZoneRequired (LandingZoneReady): the project left its
	// landing zone without naming another and there is no default zone; it
	// keeps the baseline of the zone it was in.
	ReasonLandingZoneRequired = "LandingZoneRequired"

	// ReasonNamespaceConflict (NamespaceReady): a namespace of the
	// project's name exists that is not the project's; it is left untouched.
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonNamespaceTerminating (NamespaceReady): the project's namespace
	// is being deleted; it is created again once it is gone.
	ReasonNamespaceTerminating = "NamespaceTerminating"

	// ReasonUnknownRole (RoleBindingsReady): the role mapping does not map
	// a role of the spec.
	ReasonUnknownRole = "UnknownRole"
	// ReasonClusterRoleNotFound (RoleBindingsReady): a role maps to a
	// ClusterRole that does not exist.
	ReasonClusterRoleNotFound = "ClusterRoleNotFound"
	// ReasonInvalidSubject (RoleBindingsReady): a user or group is empty
	// or would be bound as a "system:" name; it is left out of the
	// RoleBinding.
	ReasonInvalidSubject = "InvalidSubject"
	// ReasonRoleBindingNameClash (RoleBindingsReady): two roles of the
	// mapping need the same RoleBinding name; the later one's binding is
	// left out.
	ReasonRoleBindingNameClash = "RoleBindingNameClash"
	// ReasonClusterRoleNotBindable (RoleBindingsReady): the API server
	// refused a RoleBinding because the operator may not bind its
	// ClusterRole. It is the condition's reason whenever it occurs, even
	// after other problems of the step: the next pass asks before it
	// creates such a binding again.
	ReasonClusterRoleNotBindable = "ClusterRoleNotBindable"

	// ReasonQuotaAboveMaximum (BaselineReady): spec.quota exceeds the
	// zone's maxQuota.
	ReasonQuotaAboveMaximum = "QuotaAboveMaximum"
	// ReasonResourceQuotaInvalid, ReasonLimitRangeInvalid and
	// ReasonNetworkPolicyInvalid (BaselineReady): the API server refuses
	// the object the spec and the zone make, for example a spec.quota the
	// schema accepts but a ResourceQuota may not have.
	ReasonResourceQuotaInvalid = "ResourceQuotaInvalid"
	ReasonLimitRangeInvalid    = "LimitRangeInvalid"
	ReasonNetworkPolicyInvalid = "NetworkPolicyInvalid"
)

// ReasonForeignObjectReplaced is the reason of the Warning Event when an
// object with one of the operator's names in a project's own namespace,
// not created by the operator, is deleted and replaced.
const ReasonForeignObjectReplaced = "ForeignObjectReplaced"
