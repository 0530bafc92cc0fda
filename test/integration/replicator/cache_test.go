package replicator_test

import (
	"reflect"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
)

// The cache's transform (internal/replicator/informercache) makes cached
// objects share maps; these specs hold it to the invariants that makes
// safe, in the manager's real informer cache.
var _ = Describe("The operator's informer cache", func() {
	It("shares metadata between cached objects and hands out copies that share nothing", func() {
		a := aProject().users("admin", "alice").users("view", "bob").create()
		b := aProject().users("admin", "alice").users("view", "bob").create()
		expectReady(a)
		expectReady(b)
		cached := running.Manager.GetClient()
		binding := func(p *meshv1.MeshProject) client.ObjectKey {
			return client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName("admin")}
		}
		viewBinding := func(p *meshv1.MeshProject) client.ObjectKey {
			return client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName("view")}
		}
		same := func(x, y map[string]string) bool {
			return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
		}

		By("reading the cache's own objects in place: the sharing the copies must not expose")
		Eventually(func(g Gomega) {
			var inA, viewInA, inB rbacv1.RoleBinding
			g.Expect(cached.Get(ctx, binding(a), &inA, client.UnsafeDisableDeepCopy)).To(Succeed())
			g.Expect(cached.Get(ctx, viewBinding(a), &viewInA, client.UnsafeDisableDeepCopy)).To(Succeed())
			g.Expect(cached.Get(ctx, binding(b), &inB, client.UnsafeDisableDeepCopy)).To(Succeed())
			g.Expect(same(inA.Labels, inB.Labels)).To(BeTrue(), "the equal labels of two projects' RoleBindings are one map")
			g.Expect(same(inA.Annotations, viewInA.Annotations)).To(BeTrue(), "a project's RoleBindings share one ownership mark")
		}).Should(Succeed())

		By("changing what a Get and a List hand out")
		var got rbacv1.RoleBinding
		Expect(cached.Get(ctx, binding(a), &got)).To(Succeed())
		got.Labels["tampered"] = "yes"
		got.Annotations[meshv1.AnnotationMeshProject] = "someone-else"
		got.Subjects[0].Name = "mesh:mallory"
		var listed rbacv1.RoleBindingList
		Expect(cached.List(ctx, &listed, client.InNamespace(b.NamespaceName()))).To(Succeed())
		Expect(listed.Items).NotTo(BeEmpty())
		for i := range listed.Items {
			listed.Items[i].Labels["tampered"] = "yes"
			listed.Items[i].Annotations[meshv1.AnnotationMeshProject] = "someone-else"
		}

		By("reading again: neither the cached objects nor any other object changed")
		for _, p := range []*meshv1.MeshProject{a, b} {
			var again rbacv1.RoleBinding
			Expect(cached.Get(ctx, binding(p), &again)).To(Succeed())
			Expect(again.Labels).NotTo(HaveKey("tampered"))
			Expect(again.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))
			Expect(again.Subjects).To(ConsistOf(user("mesh:alice")))
			var view rbacv1.RoleBinding
			Expect(cached.Get(ctx, viewBinding(p), &view)).To(Succeed())
			Expect(view.Labels).NotTo(HaveKey("tampered"))
			Expect(view.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))
			var ns corev1.Namespace
			Expect(cached.Get(ctx, client.ObjectKey{Name: p.NamespaceName()}, &ns)).To(Succeed())
			Expect(ns.Labels).NotTo(HaveKey("tampered"))
			Expect(ns.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))
		}
	})
})
