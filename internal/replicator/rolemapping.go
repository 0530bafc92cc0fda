package replicator

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// DefaultRoleMapping maps meshProject roles to the ClusterRoles of the same
// name that every Kubernetes cluster ships.
const DefaultRoleMapping = "admin=admin,edit=edit,view=view"

// RoleMapping maps a meshProject role to the ClusterRole its RoleBinding
// refers to.
type RoleMapping map[string]string

// ParseRoleMapping parses "role=clusterrole,role=clusterrole,...".
func ParseRoleMapping(s string) (RoleMapping, error) {
	m := RoleMapping{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		role, clusterRole, ok := strings.Cut(pair, "=")
		role, clusterRole = strings.TrimSpace(role), strings.TrimSpace(clusterRole)
		if !ok || role == "" || clusterRole == "" {
			return nil, fmt.Errorf("role mapping entry %q: want <role>=<clusterrole>", pair)
		}
		if errs := validation.IsDNS1123Label(role); len(errs) > 0 {
			return nil, fmt.Errorf("role mapping entry %q: role %q: %s", pair, role, strings.Join(errs, "; "))
		}
		if errs := content.IsPathSegmentName(clusterRole); len(errs) > 0 {
			return nil, fmt.Errorf("role mapping entry %q: ClusterRole %q: %s", pair, clusterRole, strings.Join(errs, "; "))
		}
		if _, dup := m[role]; dup {
			return nil, fmt.Errorf("role mapping: role %q is mapped twice", role)
		}
		m[role] = clusterRole
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("role mapping is empty: map at least one role, for example %q", DefaultRoleMapping)
	}
	return m, nil
}

// ClusterRoles returns the mapped ClusterRole names, sorted and unique.
func (m RoleMapping) ClusterRoles() []string {
	seen := map[string]bool{}
	var names []string
	for _, cr := range m {
		if !seen[cr] {
			seen[cr] = true
			names = append(names, cr)
		}
	}
	sort.Strings(names)
	return names
}

// String formats the mapping the way ParseRoleMapping reads it.
func (m RoleMapping) String() string {
	pairs := make([]string, 0, len(m))
	for role, cr := range m {
		pairs = append(pairs, role+"="+cr)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// roleMapping maps a meshProject role to one or more ClusterRoles: a
// landing zone's roleMappings, or --role-mapping (one each).
type roleMapping struct {
	// source names where the mapping comes from, for messages.
	source string
	roles  map[string][]string
}

// mapping is --role-mapping as a roleMapping.
func (m RoleMapping) mapping() roleMapping {
	out := roleMapping{source: "--role-mapping", roles: make(map[string][]string, len(m))}
	for role, cr := range m {
		out.roles[role] = []string{cr}
	}
	return out
}

// zoneMapping is a landing zone's roleMappings as a roleMapping.
func zoneMapping(zone string, mappings []meshv1.LandingZoneRoleMapping) roleMapping {
	out := roleMapping{source: fmt.Sprintf("landing zone %q", zone), roles: make(map[string][]string, len(mappings))}
	for _, rm := range mappings {
		for _, cr := range rm.ClusterRoles {
			out.roles[rm.Role] = append(out.roles[rm.Role], string(cr))
		}
	}
	return out
}

// maps reports whether any role maps to clusterRole.
func (m roleMapping) maps(clusterRole string) bool {
	for _, crs := range m.roles {
		if slices.Contains(crs, clusterRole) {
			return true
		}
	}
	return false
}

// String formats the mapping as role=clusterrole pairs, several
// ClusterRoles of one role joined with '+'.
func (m roleMapping) String() string {
	pairs := make([]string, 0, len(m.roles))
	for role, crs := range m.roles {
		pairs = append(pairs, role+"="+strings.Join(crs, "+"))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}
