package replicator

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func TestAccessChanges(t *testing.T) {
	alice := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "mesh:alice"}
	bob := rbacv1.Subject{Kind: rbacv1.UserKind, Name: "mesh:bob"}
	devs := rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "devs"}
	binding := func(role string) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: RoleBindingName(role), Namespace: "acme-shop", Labels: map[string]string{meshv1.LabelRole: role}},
			RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: role},
		}
	}
	var a accessChanges
	a.record(binding("admin"), nil, []rbacv1.Subject{alice, devs})
	a.record(binding("view"), []rbacv1.Subject{alice, bob}, []rbacv1.Subject{alice})

	if diff := cmp.Diff([]string{
		`User "mesh:alice" gained role admin (ClusterRole admin)`,
		`Group "devs" gained role admin (ClusterRole admin)`,
	}, a.granted); diff != "" {
		t.Errorf("granted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`User "mesh:bob" lost role view (ClusterRole view)`}, a.lost); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
}

func TestJoinCapped(t *testing.T) {
	if got, want := joinCapped([]string{"a", "b"}, maxNoteLength), "a; b"; got != want {
		t.Errorf("joinCapped = %q, want %q", got, want)
	}
	many := make([]string, 0, 100)
	for i := range 100 {
		many = append(many, fmt.Sprintf("User mesh:user%03d gained role admin (ClusterRole admin)", i))
	}
	got := joinCapped(many, maxNoteLength)
	if len(got) > maxNoteLength+20 {
		t.Errorf("note is %d bytes, want at most about %d", len(got), maxNoteLength)
	}
	if !strings.HasSuffix(got, " more") || !strings.HasPrefix(got, many[0]) {
		t.Errorf("joinCapped = %q, want the first changes and how many more", got)
	}
}
