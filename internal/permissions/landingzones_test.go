package permissions

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// TestLandingZoneRightsAreTheGeneratedRole: what the operator asks for at
// start is exactly the generated landing-zone role, so that a role with
// those rules (the chart's) always passes the check.
func TestLandingZoneRightsAreTheGeneratedRole(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "landingzones", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := utilyaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	var generated []string
	for _, rule := range role.Rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					generated = append(generated, v+" "+g+"/"+res)
				}
			}
		}
	}
	var asked []string
	for _, right := range landingZoneRights {
		res := right.Resource
		if right.Subresource != "" {
			res += "/" + right.Subresource
		}
		for _, v := range landingZoneVerbs(right) {
			asked = append(asked, v+" "+right.Group+"/"+res)
		}
	}
	slices.Sort(generated)
	slices.Sort(asked)
	if diff := cmp.Diff(generated, asked); diff != "" {
		t.Errorf("rights asked at start (+) differ from config/rbac/landingzones/role.yaml (-):\n%s", diff)
	}
	for _, p := range generated {
		if strings.HasPrefix(p, "patch /") || strings.HasPrefix(p, "patch networking") || strings.Contains(p, "*") {
			t.Errorf("landing-zone role grants %q: no patch on the namespaced kinds and no wildcards", p)
		}
	}
}
