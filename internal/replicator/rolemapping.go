package replicator

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation"
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
		if errs := path.IsValidPathSegmentName(clusterRole); len(errs) > 0 {
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
