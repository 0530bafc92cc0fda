package informercache

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// encodedObject is an object as the API server sends it, and an empty one
// of its type to decode it into.
type encodedObject struct {
	obj  client.Object
	data []byte
}

// projectObjectsJSON returns the objects of project i as the cache holds
// them for a project with three users and a group in landing zone
// "standard": decoding them makes fresh strings and maps, as the
// informers' decoder does.
func projectObjectsJSON(i int) []encodedObject {
	p := fmt.Sprintf("customer-project-%05d", i)
	meta := fmt.Sprintf(`"metadata":{"name":%%q,"namespace":%q,"uid":"%08d-aaaa-bbbb-cccc-%012d","resourceVersion":"%d",`+
		`"labels":{"app.kubernetes.io/managed-by":"meshstack-operator","meshcloud.io/landing-zone":"standard"},`+
		`"annotations":{"meshcloud.io/meshproject":%q}}`, p, i, i, 100000+i, p)
	rb := func(role string) string {
		return fmt.Sprintf(`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",`+meta+`,`+
			`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":%q},`+
			`"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"oidc:alice@example.com"},`+
			`{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"oidc:user-%d@example.com"},`+
			`{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"oidc:team-%d"}]}`, "meshproject-"+role, role, i, i%100)
	}
	return []encodedObject{
		{&meshv1.MeshProject{}, []byte(fmt.Sprintf(`{"apiVersion":"meshcloud.io/v1alpha1","kind":"MeshProject","metadata":{"name":%q,"uid":"u-%d","resourceVersion":"%d","finalizers":["meshcloud.io/finalizer"]},`+
			`"spec":{"customerIdentifier":"customer","projectIdentifier":"project-%05d","landingZone":"standard","roleBindings":[`+
			`{"role":"admin","users":["alice@example.com","user-%d@example.com"]},{"role":"reader","groups":["team-%d"]}]},`+
			`"status":{"namespace":%q,"landingZone":"standard","conditions":[{"type":"Ready","status":"True","reason":"Reconciled","message":"namespace %s and 3 RoleBindings are in place","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`,
			p, i, i, i, i, i%100, p, p))},
		{&corev1.Namespace{}, []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"uid":"n-%d","resourceVersion":"%d",`+
			`"labels":{"app.kubernetes.io/managed-by":"meshstack-operator","kubernetes.io/metadata.name":%q,"meshcloud.io/customer":"customer","meshcloud.io/project":"project-%05d","meshcloud.io/landing-zone":"standard"},`+
			`"annotations":{"meshcloud.io/meshproject":%q}}}`, p, i, i, p, i, p))},
		{&rbacv1.RoleBinding{}, []byte(rb("admin"))},
		{&rbacv1.RoleBinding{}, []byte(rb("edit"))},
		{&rbacv1.RoleBinding{}, []byte(rb("view"))},
		{&corev1.ResourceQuota{}, []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"ResourceQuota",`+meta+`,"spec":{"hard":{"pods":"10","requests.cpu":"4","requests.memory":"8Gi"}},"status":{"hard":{"pods":"10"},"used":{"pods":"3"}}}`, "meshproject-quota"))},
		{&corev1.LimitRange{}, []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"LimitRange",`+meta+`,"spec":{"limits":[{"type":"Container","default":{"cpu":"500m","memory":"512Mi"}}]}}`, "meshproject-limits"))},
		{&networkingv1.NetworkPolicy{}, []byte(fmt.Sprintf(`{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",`+meta+`,"spec":{"podSelector":{},"policyTypes":["Ingress"]}}`, "meshproject-default-deny"))},
	}
}

// BenchmarkTransformHeap reports the heap that 10,000 projects' objects (a
// MeshProject, its namespace, three RoleBindings and three baseline objects
// each) keep once decoded and transformed, kind by kind as the informers
// list them. "collection between kinds" runs the garbage collector after
// each kind, as happens between the informers' lists and at every update
// of a long-running operator.
func BenchmarkTransformHeap(b *testing.B) {
	const projects = 10000
	inputs := make([][]encodedObject, 0, projects)
	for i := range projects {
		inputs = append(inputs, projectObjectsJSON(i))
	}
	for _, bc := range []struct {
		name           string
		gcBetweenKinds bool
	}{{"one list", false}, {"collection between kinds", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				transform := Transform()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				kept := make([]client.Object, 0, projects*len(inputs[0]))
				for k := range inputs[0] {
					if bc.gcBetweenKinds {
						runtime.GC()
					}
					for _, objs := range inputs {
						obj := objs[k].obj.DeepCopyObject().(client.Object)
						if err := json.Unmarshal(objs[k].data, obj); err != nil {
							b.Fatal(err)
						}
						out, err := transform(obj)
						if err != nil {
							b.Fatal(err)
						}
						kept = append(kept, out.(client.Object))
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/projects, "heapB/project")
				runtime.KeepAlive(kept)
				runtime.KeepAlive(transform)
			}
		})
	}
}
