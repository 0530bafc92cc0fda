package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Serial: it stops the suite's operator and runs a fresh one in its place.
var _ = Describe("A converged project", Serial, func() {
	It("costs no write requests when a restarted operator reconciles it again", func() {
		var projects []*meshv1.MeshProject
		for range 10 {
			projects = append(projects, aProject().users("admin", "alice").users("view", "bob").groups("edit", "devs").tag("env", "prod").create())
		}
		for _, p := range projects {
			expectReady(p)
		}

		// A fresh operator lists every object again, as after a restart or
		// a cache resync, and reconciles every MeshProject once.
		Expect(running.Stop()).To(Succeed())
		var all meshv1.MeshProjectList
		Expect(fw.Client.List(ctx, &all)).To(Succeed())
		before := framework.ReconcileCount("meshproject")
		fresh, err := framework.StartManager(identity.Config, replicatorOptions())
		Expect(err).NotTo(HaveOccurred())
		running = fresh

		Eventually(func() float64 {
			return framework.ReconcileCount("meshproject") - before
		}, timeout, interval).Should(BeNumerically(">=", len(all.Items)))
		Expect(fresh.Writes()).To(BeZero(), "a converged state must cost no writes, got %v", fresh.WritePaths())
	})
})

var _ = Describe("The operator's cache", func() {
	It("holds only the namespaces and RoleBindings the operator manages", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged-" + string(p.Spec.CustomerIdentifier)}}
		Expect(fw.Client.Create(ctx, foreign)).To(Succeed())
		Expect(fw.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "unmanaged", Namespace: foreign.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{user("mesh:someone")},
		})).To(Succeed())

		cache := running.Manager.GetCache()
		Eventually(func(g Gomega) {
			var namespaces corev1.NamespaceList
			g.Expect(cache.List(ctx, &namespaces)).To(Succeed())
			names := map[string]bool{}
			for _, ns := range namespaces.Items {
				g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue), "cached namespace %s", ns.Name)
				names[ns.Name] = true
			}
			g.Expect(names).To(HaveKey(p.NamespaceName()))
			g.Expect(names).NotTo(HaveKey("default"))

			var bindings rbacv1.RoleBindingList
			g.Expect(cache.List(ctx, &bindings)).To(Succeed())
			g.Expect(bindings.Items).NotTo(BeEmpty())
			for _, rb := range bindings.Items {
				g.Expect(rb.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue), "cached RoleBinding %s/%s", rb.Namespace, rb.Name)
			}
		}, timeout, interval).Should(Succeed())
	})
})
