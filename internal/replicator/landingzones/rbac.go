// Package landingzones holds the RBAC markers of what the replicator needs
// for landing zones, beyond the seed's meshfed-service ClusterRole. They sit
// in a package of their own so that controller-gen writes them to a role
// file of their own, config/rbac/landingzones/role.yaml, which the chart's
// optional ClusterRole meshstack-operator-landing-zones equals (a test
// compares them). The code that uses these rights is in internal/replicator;
// it asks the API server at start whether it holds them.
//
// No patch and no wildcards on the namespaced kinds: the operator creates,
// updates and deletes them, as it does namespaces and RoleBindings.
//
// +kubebuilder:rbac:groups="",resources=resourcequotas;limitranges,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshlandingzones,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshlandingzones/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshlandingzones/finalizers,verbs=update
package landingzones
