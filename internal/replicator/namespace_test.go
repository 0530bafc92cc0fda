package replicator

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func project(tags map[string]meshv1.TagValue) *meshv1.MeshProject {
	return &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-shop"},
		Spec:       meshv1.MeshProjectSpec{CustomerIdentifier: "acme", ProjectIdentifier: "shop", Tags: tags},
	}
}

func TestMarkNamespace(t *testing.T) {
	owned := map[string]string{
		meshv1.LabelManagedBy: meshv1.ManagedByValue,
		meshv1.LabelCustomer:  "acme",
		meshv1.LabelProject:   "shop",
	}
	withLabels := func(base map[string]string, extra ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			out[extra[i]] = extra[i+1]
		}
		return out
	}
	ownedAnnotation := map[string]string{meshv1.AnnotationMeshProject: "acme-shop"}

	zoneAnnotation := func(keys string) map[string]string {
		return map[string]string{meshv1.AnnotationMeshProject: "acme-shop", meshv1.AnnotationLandingZoneLabels: keys}
	}
	const psa = "pod-security.kubernetes.io/enforce"

	tests := []struct {
		name            string
		tags            map[string]meshv1.TagValue
		zoneLabels      map[string]string
		labels          map[string]string
		annotations     map[string]string
		wantLabels      map[string]string
		wantAnnotations map[string]string
		wantChanged     bool
	}{
		{
			name:        "new namespace",
			tags:        map[string]meshv1.TagValue{"env": "prod"},
			wantLabels:  withLabels(owned, "tags.meshcloud.io/env", "prod"),
			wantChanged: true,
		},
		{
			name:        "converged",
			tags:        map[string]meshv1.TagValue{"env": "prod"},
			labels:      withLabels(owned, "tags.meshcloud.io/env", "prod"),
			annotations: ownedAnnotation,
			wantLabels:  withLabels(owned, "tags.meshcloud.io/env", "prod"),
		},
		{
			name:        "edited label restored, foreign label kept",
			labels:      withLabels(owned, meshv1.LabelCustomer, "evil", "example.com/team", "a"),
			annotations: ownedAnnotation,
			wantLabels:  withLabels(owned, "example.com/team", "a"),
			wantChanged: true,
		},
		{
			name:        "removed tag dropped",
			tags:        map[string]meshv1.TagValue{"env": "prod"},
			labels:      withLabels(owned, "tags.meshcloud.io/env", "prod", "tags.meshcloud.io/old", "x"),
			annotations: ownedAnnotation,
			wantLabels:  withLabels(owned, "tags.meshcloud.io/env", "prod"),
			wantChanged: true,
		},
		{
			name:            "zone labels set and remembered",
			zoneLabels:      map[string]string{psa: "baseline", "example.com/tier": "gold"},
			labels:          owned,
			annotations:     ownedAnnotation,
			wantLabels:      withLabels(owned, psa, "baseline", "example.com/tier", "gold"),
			wantAnnotations: zoneAnnotation("example.com/tier," + psa),
			wantChanged:     true,
		},
		{
			name:            "zone labels converged",
			zoneLabels:      map[string]string{psa: "baseline"},
			labels:          withLabels(owned, psa, "baseline"),
			annotations:     zoneAnnotation(psa),
			wantLabels:      withLabels(owned, psa, "baseline"),
			wantAnnotations: zoneAnnotation(psa),
		},
		{
			name:            "zone label removed from the zone is dropped, a foreign label stays",
			zoneLabels:      map[string]string{},
			labels:          withLabels(owned, psa, "baseline", "example.com/team", "a"),
			annotations:     zoneAnnotation(psa),
			wantLabels:      withLabels(owned, "example.com/team", "a"),
			wantAnnotations: ownedAnnotation,
			wantChanged:     true,
		},
		{
			name:            "zone label drift restored",
			zoneLabels:      map[string]string{psa: "restricted"},
			labels:          withLabels(owned, psa, "privileged"),
			annotations:     zoneAnnotation(psa),
			wantLabels:      withLabels(owned, psa, "restricted"),
			wantAnnotations: zoneAnnotation(psa),
			wantChanged:     true,
		},
		{
			name:            "zone not applicable: its labels are kept",
			zoneLabels:      nil,
			labels:          withLabels(owned, psa, "baseline"),
			annotations:     zoneAnnotation(psa),
			wantLabels:      withLabels(owned, psa, "baseline"),
			wantAnnotations: zoneAnnotation(psa),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-shop", Labels: maps.Clone(tt.labels), Annotations: maps.Clone(tt.annotations)}}
			changed := markNamespace(ns, project(tt.tags), tt.zoneLabels)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.wantLabels, ns.Labels); diff != "" {
				t.Errorf("labels mismatch (-want +got):\n%s", diff)
			}
			wantAnnotations := tt.wantAnnotations
			if wantAnnotations == nil {
				wantAnnotations = ownedAnnotation
			}
			if diff := cmp.Diff(wantAnnotations, ns.Annotations); diff != "" {
				t.Errorf("annotations mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredRoleBindingPrefixesAndSortsSubjects(t *testing.T) {
	r := &MeshProjectReconciler{UsernamePrefix: "oidc:", GroupsPrefix: "grp:"}
	binding := meshv1.ProjectRoleBinding{Role: "edit", Users: []meshv1.SubjectName{"zoe", "alice"}, Groups: []meshv1.SubjectName{"devs"}}
	project := project(nil)
	project.Spec.RoleBindings = []meshv1.ProjectRoleBinding{binding}
	plans := r.desiredRoleBindings(project, "acme-shop", RoleMapping{"edit": "edit"}.mapping())
	if len(plans) != 1 || len(plans[0].wants) != 1 || len(plans[0].problems) != 0 {
		t.Fatalf("desiredRoleBindings = %+v, want one binding", plans)
	}
	got := plans[0].wants[0]
	want := []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oidc:alice"},
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oidc:zoe"},
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "grp:devs"},
	}
	if diff := cmp.Diff(want, got.Subjects); diff != "" {
		t.Errorf("subjects mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"}, got.RoleRef); diff != "" {
		t.Errorf("roleRef mismatch (-want +got):\n%s", diff)
	}
	if got.Name != "meshproject-edit" || got.Namespace != "acme-shop" || got.Annotations[meshv1.AnnotationMeshProject] != "acme-shop" {
		t.Errorf("unexpected metadata %+v", got.ObjectMeta)
	}
}

func TestOwnsNamespace(t *testing.T) {
	const recorded, other = "ns-uid-1", "ns-uid-2"
	marks := map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue}
	named := map[string]string{meshv1.AnnotationMeshProject: "acme-shop"}
	withUID := map[string]string{meshv1.AnnotationMeshProject: "acme-shop", meshv1.AnnotationMeshProjectUID: "project-uid"}
	tests := []struct {
		name        string
		status      meshv1.MeshProjectStatus
		uid         string
		labels      map[string]string
		annotations map[string]string
		want        bool
	}{
		{name: "the recorded namespace", status: meshv1.MeshProjectStatus{Namespace: "acme-shop", NamespaceUID: recorded}, uid: recorded, want: true},
		{name: "the recorded namespace, marks removed", status: meshv1.MeshProjectStatus{NamespaceUID: recorded}, uid: recorded, want: true},
		{name: "another namespace of the name, with every mark", status: meshv1.MeshProjectStatus{Namespace: "acme-shop", NamespaceUID: recorded},
			uid: other, labels: marks, annotations: named},
		{name: "another namespace of the name, created by the operator before it could record it",
			status: meshv1.MeshProjectStatus{NamespaceUID: recorded}, uid: other, labels: marks, annotations: withUID, want: true},
		{name: "planted before the project: annotation and label, nothing recorded", uid: other, labels: marks, annotations: named},
		{name: "created by the operator, stopped before the status", uid: other, labels: marks, annotations: withUID, want: true},
		{name: "the project's UID under another project's name", uid: other, labels: marks,
			annotations: map[string]string{meshv1.AnnotationMeshProject: "other", meshv1.AnnotationMeshProjectUID: "project-uid"}},
		{name: "previous release: status names it, both marks", status: meshv1.MeshProjectStatus{Namespace: "acme-shop"}, uid: other,
			labels: marks, annotations: named, want: true},
		{name: "previous release: status names it, label missing", status: meshv1.MeshProjectStatus{Namespace: "acme-shop"}, uid: other,
			annotations: named},
		{name: "previous release: status names another namespace", status: meshv1.MeshProjectStatus{Namespace: "acme-other"}, uid: other,
			labels: marks, annotations: named},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(nil)
			p.UID = "project-uid"
			p.Status = tt.status
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-shop", UID: types.UID(tt.uid), Labels: tt.labels, Annotations: tt.annotations}}
			if got := ownsNamespace(p, ns); got != tt.want {
				t.Errorf("ownsNamespace = %v, want %v", got, tt.want)
			}
		})
	}
}
