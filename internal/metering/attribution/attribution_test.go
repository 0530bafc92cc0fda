package attribution

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNameAttribution(t *testing.T) {
	for ns, want := range map[string]*Attribution{
		"acme-shop":            {By: AttributedByNamespaceName, Customer: "acme", Project: "shop"},
		"kube-system":          Unattributed,
		"kube-public":          Unattributed,
		"openshift-console":    Unattributed,
		"meshstack-system":     Unattributed, // the release namespace
		"default":              Unattributed,
		"cert-manager-webhook": Unattributed,
	} {
		if diff := cmp.Diff(want, FromName(ns, "meshstack-system")); diff != "" {
			t.Errorf("FromName(%q) (-want +got):\n%s", ns, diff)
		}
	}
}

func TestProjectAttribution(t *testing.T) {
	managed := map[string]string{
		"app.kubernetes.io/managed-by": "meshstack-operator", "meshcloud.io/customer": "acme", "meshcloud.io/project": "shop",
		"meshcloud.io/landing-zone": "prod", "tags.meshcloud.io/cost-center": "4711", "tags.meshcloud.io/env": "prod", "other": "x",
	}
	owner := map[string]string{"meshcloud.io/meshproject": "acme-shop"}
	without := func(key string) map[string]string {
		l := map[string]string{}
		for k, v := range managed {
			if k != key {
				l[k] = v
			}
		}
		return l
	}
	tests := []struct {
		name                string
		labels, annotations map[string]string
		want                *Attribution
	}{
		{"a namespace the replicator manages", managed, owner, &Attribution{By: AttributedByProject, Customer: "acme", Project: "shop",
			LandingZone: "prod", Tags: map[string]string{"cost-center": "4711", "env": "prod"}}},
		{"without the ownership annotation", managed, nil, nil},
		{"managed by someone else", func() map[string]string { l := without(""); l["app.kubernetes.io/managed-by"] = "helm"; return l }(), owner, nil},
		{"without a customer label", without("meshcloud.io/customer"), owner, nil},
		{"without a project label", without("meshcloud.io/project"), owner, nil},
		{"without a zone", without("meshcloud.io/landing-zone"), owner, &Attribution{By: AttributedByProject, Customer: "acme", Project: "shop",
			Tags: map[string]string{"cost-center": "4711", "env": "prod"}}},
	}
	for _, tt := range tests {
		ns := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "acme-shop", Labels: tt.labels, Annotations: tt.annotations}}
		if diff := cmp.Diff(tt.want, FromProject(ns)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
