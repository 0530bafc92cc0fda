package replicator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRoleMapping(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    RoleMapping
		wantErr string
	}{
		{name: "default", in: DefaultRoleMapping, want: RoleMapping{"admin": "admin", "edit": "edit", "view": "view"}},
		{name: "custom role and spaces", in: " admin=admin , auditor=my-custom-role,", want: RoleMapping{"admin": "admin", "auditor": "my-custom-role"}},
		{name: "two roles on one ClusterRole", in: "reader=view,viewer=view", want: RoleMapping{"reader": "view", "viewer": "view"}},
		{name: "missing ClusterRole", in: "admin=", wantErr: `role mapping entry "admin=": want <role>=<clusterrole>`},
		{name: "no equals sign", in: "admin", wantErr: `role mapping entry "admin": want <role>=<clusterrole>`},
		{name: "role is no DNS label", in: "Admin=admin", wantErr: `role "Admin"`},
		{name: "ClusterRole with a slash", in: "admin=a/b", wantErr: `ClusterRole "a/b"`},
		{name: "role mapped twice", in: "admin=admin,admin=edit", wantErr: `role "admin" is mapped twice`},
		{name: "empty", in: "", wantErr: "role mapping is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRoleMapping(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRoleMapping(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRoleMapping(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRoleMapping(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRoleMappingStringRoundTrips(t *testing.T) {
	m := RoleMapping{"view": "view", "admin": "admin", "auditor": "custom"}
	if got, want := m.String(), "admin=admin,auditor=custom,view=view"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	back, err := ParseRoleMapping(m.String())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, back); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"admin", "view"}, RoleMapping{"a": "view", "b": "admin", "c": "view"}.ClusterRoles()); diff != "" {
		t.Errorf("ClusterRoles() mismatch (-want +got):\n%s", diff)
	}
}
