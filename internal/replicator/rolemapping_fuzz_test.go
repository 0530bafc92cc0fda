package replicator

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzParseRoleMapping feeds --role-mapping values to the parser. Whatever
// it accepts must be a usable mapping that String writes back in a form the
// parser reads to the same mapping, and String's form must be canonical.
func FuzzParseRoleMapping(f *testing.F) {
	for _, seed := range []string{
		DefaultRoleMapping,
		" admin=admin , auditor=my-custom-role,",
		"reader=view,viewer=view",
		"admin=system:aggregate-to-admin",
		"admin=a=b",
		"admin=",
		"=admin",
		"admin",
		"Admin=admin",
		"admin=a/b",
		"admin=..",
		"admin=%2f",
		"admin=admin,admin=edit",
		"",
		",,,",
		" = , = ",
		"admin=\tview\n",
		"admin=view\u00a0",
		"a-=view",
		strings.Repeat("a", 64) + "=view",
		"admin=" + strings.Repeat("x", 300),
		"admin=\xff\xfe",
		"admin=ad min",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseRoleMapping(s)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseRoleMapping(%q) returned %v with the error %v", s, m, err)
			}
			return
		}
		if len(m) == 0 {
			t.Fatalf("ParseRoleMapping(%q) accepted an empty mapping", s)
		}
		for role, clusterRole := range m {
			if errs := validation.IsDNS1123Label(role); len(errs) > 0 {
				t.Errorf("ParseRoleMapping(%q) accepted role %q: %v", s, role, errs)
			}
			if errs := content.IsPathSegmentName(clusterRole); len(errs) > 0 || clusterRole == "" {
				t.Errorf("ParseRoleMapping(%q) accepted ClusterRole %q: %v", s, clusterRole, errs)
			}
			if strings.TrimSpace(clusterRole) != clusterRole || strings.Contains(clusterRole, ",") {
				t.Errorf("ParseRoleMapping(%q) kept separators or blanks in ClusterRole %q", s, clusterRole)
			}
			// The binding of a role with one ClusterRole is named after
			// the role alone; it must be a valid RoleBinding name.
			if errs := content.IsPathSegmentName(RoleBindingName(role)); len(errs) > 0 {
				t.Errorf("RoleBinding name %q of role %q: %v", RoleBindingName(role), role, errs)
			}
		}

		formatted := m.String()
		back, err := ParseRoleMapping(formatted)
		if err != nil {
			t.Fatalf("ParseRoleMapping(%q) = %v, whose String() %q does not parse: %v", s, m, formatted, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Fatalf("round trip of %q through %q (-first +second):\n%s", s, formatted, diff)
		}
		if again := back.String(); again != formatted {
			t.Fatalf("String() is not canonical: %q, then %q", formatted, again)
		}

		crs := m.ClusterRoles()
		if !slices.IsSorted(crs) || len(slices.Compact(slices.Clone(crs))) != len(crs) {
			t.Errorf("ClusterRoles() = %q, want sorted and unique", crs)
		}
		for _, cr := range m {
			if !slices.Contains(crs, cr) {
				t.Errorf("ClusterRoles() = %q lacks %q", crs, cr)
			}
		}
		global := m.mapping()
		for role, cr := range m {
			if !global.maps(cr) || !slices.Equal(global.roles[role], []string{cr}) {
				t.Errorf("mapping() of %v maps role %q to %q", m, role, global.roles[role])
			}
		}
	})
}
