package informercache

import (
	"maps"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func TestCacheTransform(t *testing.T) {
	project := &meshv1.MeshProject{ObjectMeta: metav1.ObjectMeta{Name: "p",
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"big":"copy"}`, "keep": "me"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	transform := Transform()
	if _, err := transform(project); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"keep": "me"}, project.Annotations); diff != "" || project.ManagedFields != nil {
		t.Errorf("annotations (-want +got):\n%s\nmanagedFields %v", diff, project.ManagedFields)
	}
}

// Namespaces and RoleBindings are written with updates from the cache:
// dropping kubectl's annotation there would delete it on the server.
func TestCacheKeepsLastAppliedOfWhatItUpdates(t *testing.T) {
	applied := map[string]string{corev1.LastAppliedConfigAnnotation: `{"kept":true}`, meshv1.AnnotationMeshProject: "p"}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Annotations: maps.Clone(applied)}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "rb", Namespace: "ns", Annotations: maps.Clone(applied)}},
	} {
		if _, err := Transform()(obj); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(applied, obj.GetAnnotations()); diff != "" {
			t.Errorf("%T annotations (-want +got):\n%s", obj, diff)
		}
	}
}

func TestCacheKeepsBaselineSpecsAsDigests(t *testing.T) {
	marks := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: "ns",
			Labels:      map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: "p"}}
	}
	pods := func(n string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourcePods: resource.MustParse(n)}
	}
	quota := func(n string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: marks(), Spec: corev1.ResourceQuotaSpec{Hard: pods(n)},
			Status: corev1.ResourceQuotaStatus{Used: pods("3")}}
	}
	limits := func(n string) *corev1.LimitRange {
		return &corev1.LimitRange{ObjectMeta: marks(), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Max: pods(n)}}}}
	}
	policy := func(types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: marks(), Spec: networkingv1.NetworkPolicySpec{PolicyTypes: types}}
	}
	unmarked := quota("5")
	unmarked.Labels = nil

	cases := []struct {
		name         string
		cached, want client.Object
		wantSpec     func(client.Object) any
		asWanted     bool
	}{
		{"quota as wanted", quota("5"), quota("5000m"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, true},
		{"quota drifted", quota("5"), quota("6"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, false},
		{"quota without the operator's label", unmarked, quota("5"), func(o client.Object) any { return &o.(*corev1.ResourceQuota).Spec }, false},
		{"limit range as wanted", limits("5"), limits("5"), func(o client.Object) any { return &o.(*corev1.LimitRange).Spec }, true},
		{"limit range drifted", limits("5"), limits("50"), func(o client.Object) any { return &o.(*corev1.LimitRange).Spec }, false},
		{"policy as wanted", policy(networkingv1.PolicyTypeIngress), policy(networkingv1.PolicyTypeIngress),
			func(o client.Object) any { return &o.(*networkingv1.NetworkPolicy).Spec }, true},
		{"policy drifted", policy(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress), policy(networkingv1.PolicyTypeIngress),
			func(o client.Object) any { return &o.(*networkingv1.NetworkPolicy).Spec }, false},
	}
	transform := Transform()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Informers may transform an object they already hold: twice
			// must equal once.
			for range 2 {
				if _, err := transform(tc.cached); err != nil {
					t.Fatal(err)
				}
			}
			if !digestOnly(tc.cached) {
				t.Fatalf("no digest in %+v", tc.cached)
			}
			empty := tc.want.DeepCopyObject().(client.Object)
			keepSpecDigest(empty)
			if diff := cmp.Diff(tc.wantSpec(empty), tc.wantSpec(tc.cached)); diff != "" {
				t.Errorf("the cache kept the spec or status (-want +got):\n%s", diff)
			}
			if got := CachedAsWanted(tc.cached, tc.want, tc.wantSpec(tc.want)); got != tc.asWanted {
				t.Errorf("CachedAsWanted = %v, want %v", got, tc.asWanted)
			}
		})
	}
	q := quota("5")
	keepSpecDigest(q)
	if q.Status.Used != nil {
		t.Errorf("a cached quota keeps its usage: %+v", q.Status)
	}
	if errs := validation.IsQualifiedName(labelCachedSpecDigest); len(errs) == 0 {
		t.Errorf("%q is a valid label key, so an object on the server could carry a forged digest", labelCachedSpecDigest)
	}
}

func TestCacheSharesMetadata(t *testing.T) {
	binding := func(namespace string) *rbacv1.RoleBinding {
		// Fresh strings for each object, as a decoder makes them.
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{
			Name: strings.Clone("meshproject-admin"), Namespace: namespace,
			Labels:      map[string]string{strings.Clone(meshv1.LabelManagedBy): strings.Clone(meshv1.ManagedByValue), meshv1.LabelLandingZone: "z"},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: strings.Clone(namespace)},
		},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: strings.Clone("admin")},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: strings.Clone("mesh:alice")}},
		}
	}
	quota := func(namespace string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{
			Name: strings.Clone("meshproject-quota"), Namespace: namespace,
			Labels:      map[string]string{strings.Clone(meshv1.LabelManagedBy): strings.Clone(meshv1.ManagedByValue), meshv1.LabelLandingZone: "z"},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: strings.Clone(namespace)},
		}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}}
	}
	a, b := binding("a"), binding("b")
	other := binding("c")
	other.Labels[meshv1.LabelLandingZone] = "other"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{corev1.LabelMetadataName: "a"},
		Annotations: map[string]string{meshv1.AnnotationMeshProject: "a"}}}
	quotaA, quotaB := quota("a"), quota("b")
	foreign := quota("a")
	foreign.Annotations["note"] = "a tenant's"
	transform := Transform()
	for _, obj := range []client.Object{a, b, other, ns, quotaA, quotaB, foreign} {
		if _, err := transform(obj); err != nil {
			t.Fatal(err)
		}
	}
	same := func(x, y map[string]string) bool {
		return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	}
	if !same(a.Labels, b.Labels) {
		t.Error("equal label maps are not shared")
	}
	if same(a.Labels, other.Labels) || other.Labels[meshv1.LabelLandingZone] != "other" {
		t.Errorf("different label maps are shared: %v", other.Labels)
	}
	if unsafe.StringData(a.Name) != unsafe.StringData(b.Name) {
		t.Error("equal names are not interned")
	}
	if unsafe.StringData(a.Subjects[0].Name) != unsafe.StringData(b.Subjects[0].Name) || unsafe.StringData(a.RoleRef.Name) != unsafe.StringData(b.RoleRef.Name) {
		t.Error("equal subjects and roles are not interned")
	}
	if diff := cmp.Diff(map[string]string{meshv1.AnnotationMeshProject: "a"}, a.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{corev1.LabelMetadataName: "a"}, ns.Labels); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}
	if !same(a.Annotations, ns.Annotations) || !same(a.Annotations, quotaA.Annotations) {
		t.Error("the ownership marks of one project's objects are not one map")
	}
	if same(a.Annotations, b.Annotations) || same(a.Annotations, foreign.Annotations) {
		t.Errorf("different annotations are shared: %v, %v", b.Annotations, foreign.Annotations)
	}
	if diff := cmp.Diff(map[string]string{meshv1.AnnotationMeshProject: "a", "note": "a tenant's"}, foreign.Annotations); diff != "" {
		t.Errorf("annotations of an object with more than the mark (-want +got):\n%s", diff)
	}
	if !same(quotaA.Labels, quotaB.Labels) || !digestOnly(quotaA) {
		t.Errorf("quotas of one zone with one spec do not share their labels and digest: %v, %v", quotaA.Labels, quotaB.Labels)
	}
}

func TestCacheInternsProjects(t *testing.T) {
	project := func(name string) *meshv1.MeshProject {
		return &meshv1.MeshProject{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: meshv1.MeshProjectSpec{LandingZone: strings.Clone("z"), RoleBindings: []meshv1.ProjectRoleBinding{{
				Role: strings.Clone("admin"), Users: []meshv1.SubjectName{meshv1.SubjectName(strings.Clone("alice"))},
				Groups: []meshv1.SubjectName{meshv1.SubjectName(strings.Clone("devs"))}}}},
			Status: meshv1.MeshProjectStatus{Conditions: []metav1.Condition{{Type: strings.Clone(meshv1.ReadyCondition),
				Status: metav1.ConditionStatus(strings.Clone("True")), Reason: strings.Clone(meshv1.ReasonReconciled), Message: "namespace " + name}}}}
	}
	a, b := project("a"), project("b")
	transform := Transform()
	for _, p := range []*meshv1.MeshProject{a, b} {
		if _, err := transform(p); err != nil {
			t.Fatal(err)
		}
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	ra, rb := a.Spec.RoleBindings[0], b.Spec.RoleBindings[0]
	ca, cb := a.Status.Conditions[0], b.Status.Conditions[0]
	if !same(ra.Role, rb.Role) || !same(string(ra.Users[0]), string(rb.Users[0])) || !same(string(ra.Groups[0]), string(rb.Groups[0])) ||
		!same(a.Spec.LandingZone, b.Spec.LandingZone) || !same(ca.Reason, cb.Reason) || !same(string(ca.Status), string(cb.Status)) {
		t.Error("equal strings of two projects are not interned")
	}
	if diff := cmp.Diff(project("a"), a); diff != "" {
		t.Errorf("interning changed the project (-want +got):\n%s", diff)
	}
}

func TestSharedOwnerMarksAreBounded(t *testing.T) {
	s := newSharedMetadata()
	for i := range maxSharedOwnerMarks + 10 {
		owner := "p" + strconv.Itoa(i)
		if got := s.annotationSet(map[string]string{meshv1.AnnotationMeshProject: owner}); got[meshv1.AnnotationMeshProject] != owner || len(got) != 1 {
			t.Fatalf("the shared marks of %s are %v", owner, got)
		}
	}
	if len(s.owners) > maxSharedOwnerMarks {
		t.Errorf("%d shared owner marks, more than the bound %d", len(s.owners), maxSharedOwnerMarks)
	}
}

func TestSharedLabelSetsAreBounded(t *testing.T) {
	s := newSharedMetadata()
	for i := range maxSharedLabelSets + 10 {
		s.labelSet(map[string]string{"k": strconv.Itoa(i)})
	}
	if len(s.labels) != maxSharedLabelSets {
		t.Errorf("%d shared label sets, want the bound %d", len(s.labels), maxSharedLabelSets)
	}
}

// Informers may transform again an object they already hold (client-go
// documents it): that must write into none of the maps the objects share.
func TestTransformingAgainWritesNoSharedMap(t *testing.T) {
	meta := func(namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "o", Namespace: namespace,
			Labels:      map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: "p"}}
	}
	quotaA := &corev1.ResourceQuota{ObjectMeta: meta("a"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}}}
	quotaB := &corev1.ResourceQuota{ObjectMeta: meta("b"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: meta("a")}
	transform := Transform()
	objs := []client.Object{quotaA, quotaB, binding}
	for _, obj := range objs {
		if _, err := transform(obj); err != nil {
			t.Fatal(err)
		}
	}
	labels, annotations := maps.Clone(quotaA.Labels), maps.Clone(quotaA.Annotations)
	for _, obj := range objs {
		if _, err := transform(obj); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(labels, quotaB.Labels); diff != "" {
		t.Errorf("the shared labels changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(annotations, binding.Annotations); diff != "" {
		t.Errorf("the shared ownership mark changed (-before +after):\n%s", diff)
	}
}

// The cache keeps a handle on what it interned, so that objects decoded
// after a garbage collection still get the same copy of a string.
func TestInternedStringsOutliveACollection(t *testing.T) {
	s := newSharedMetadata()
	name := "mesh:carol-" + strconv.Itoa(os.Getpid())
	first := s.intern(strings.Clone(name))
	runtime.GC()
	runtime.GC()
	if again := s.intern(strings.Clone(name)); unsafe.StringData(again) != unsafe.StringData(first) {
		t.Error("a string interned before a garbage collection is copied again after it")
	}
	runtime.KeepAlive(first)
}

func TestInternedStringsAreBounded(t *testing.T) {
	s := newSharedMetadata()
	for i := range maxInternedStrings + 10 {
		s.intern(strconv.Itoa(i))
	}
	if len(s.handles) > maxInternedStrings {
		t.Errorf("%d interned strings kept, more than the bound %d", len(s.handles), maxInternedStrings)
	}
}
