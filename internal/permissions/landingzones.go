package permissions

import (
	"context"
	"fmt"
	"slices"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// landingZoneRights is what the replicator needs for landing zones: the
// rules of config/rbac/landingzones/role.yaml (a unit test keeps them equal).
var landingZoneRights = []authorizationv1.ResourceAttributes{
	{Group: "", Resource: "resourcequotas"},
	{Group: "", Resource: "limitranges"},
	{Group: "networking.k8s.io", Resource: "networkpolicies"},
	{Group: meshv1.GroupVersion.Group, Resource: landingZoneResource},
	{Group: meshv1.GroupVersion.Group, Resource: landingZoneResource, Subresource: "status"},
	{Group: meshv1.GroupVersion.Group, Resource: landingZoneResource, Subresource: "finalizers"},
}

const (
	// landingZoneResource is the resource of MeshLandingZones.
	landingZoneResource = "meshlandingzones"
	// verbUpdate is needed on every landing-zone resource.
	verbUpdate = "update"
)

// informerVerbs are the verbs an informer needs for a resource.
var informerVerbs = []string{"get", "list", "watch"}

// landingZoneVerbs are the verbs needed per resource of landingZoneRights.
func landingZoneVerbs(a authorizationv1.ResourceAttributes) []string {
	switch {
	case a.Subresource == "status":
		return []string{"get", verbUpdate, "patch"}
	case a.Subresource == "finalizers":
		return []string{verbUpdate}
	case a.Group == meshv1.GroupVersion.Group:
		return slices.Concat(informerVerbs, []string{verbUpdate, "patch"})
	default:
		return slices.Concat(informerVerbs, []string{"create", verbUpdate, "delete"})
	}
}

// LandingZonesPermitted asks the API server, with SelfSubjectAccessReviews,
// whether cfg's identity holds every landing-zone right cluster-wide. It
// returns the missing rights as "verb group/resource[/subresource]".
// Without them the replicator starts no informer for the landing-zone kinds
// and reports LandingZonesNotPermitted for projects that name a zone.
func LandingZonesPermitted(ctx context.Context, cfg *rest.Config) (bool, []string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false, nil, err
	}
	var missing []string
	for _, right := range landingZoneRights {
		for _, verb := range landingZoneVerbs(right) {
			attrs := right
			attrs.Verb = verb
			ok, err := SelfAllowed(ctx, cs, attrs)
			if err != nil {
				return false, nil, fmt.Errorf("asking whether landing zones are permitted: %w", err)
			}
			if !ok {
				name := attrs.Group + "/" + attrs.Resource
				if attrs.Subresource != "" {
					name += "/" + attrs.Subresource
				}
				missing = append(missing, verb+" "+name)
			}
		}
	}
	return len(missing) == 0, missing, nil
}
