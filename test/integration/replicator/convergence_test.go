package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Serial: it stops the suite's operator and runs a fresh one in its place.
var _ = Describe("A converged project", Serial, func() {
	It("costs no write requests, and no reads of its baseline objects, when a restarted operator reconciles it again", func() {
		projects := make([]*meshv1.MeshProject, 0, 13) // 10 here, 3 in the zone below
		for range 10 {
			projects = append(projects, aProject().users("admin", "alice").users("view", "bob").groups("edit", "devs").tag("env", "prod").create())
		}
		// Projects in a landing zone with every kind of baseline object,
		// including the ones the API server adds defaults to.
		ensureClusterRole("lz-secret-reader", readSecrets)
		z := aZone().mapping("admin", "admin").mapping("reader", "view", "lz-secret-reader").podSecurity("baseline").
			hard("requests.cpu", "4", "limits.memory", "16Gi").maxQuota("requests.cpu", "16").
			containerDefaults("500m", "512Mi", "100m", "128Mi").
			policy("default-deny-ingress", denyIngress).policy("allow-dns", allowDNS).create()
		for range 3 {
			projects = append(projects,
				aProject().zone(z.Name).users("admin", "alice").users("reader", "bob").quota("requests.cpu", "8").create())
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
		zonesBefore := framework.ReconcileCount("meshlandingzone")
		fresh, err := framework.StartManager(identity.Config, replicatorOptions())
		Expect(err).NotTo(HaveOccurred())
		running = fresh

		Eventually(func() float64 {
			return framework.ReconcileCount("meshproject") - before
		}).Should(BeNumerically(">=", len(all.Items)))
		var zones meshv1.MeshLandingZoneList
		Expect(fw.Client.List(ctx, &zones)).To(Succeed())
		Eventually(func() float64 {
			return framework.ReconcileCount("meshlandingzone") - zonesBefore
		}).Should(BeNumerically(">=", len(zones.Items)))
		Expect(fresh.Writes()).To(BeZero(), "a converged state must cost no writes, got %v", fresh.WritePaths())
		// Nor reads: the cache's digest of each baseline object's spec
		// equals the desired one's, so no object is fetched to compare.
		for _, p := range projects {
			ns := "/namespaces/" + p.NamespaceName()
			Expect(fresh.Requests(ns+"/resourcequotas/", ns+"/limitranges/", ns+"/networkpolicies/")).To(BeZero(),
				"%s: a converged baseline must be recognised from the cache alone", p.Name)
		}
	})
})

var _ = Describe("The operator's cache", func() {
	It("holds only the namespaces, RoleBindings, ResourceQuotas, LimitRanges and NetworkPolicies the operator manages", func() {
		z := aZone().hard("pods", "5").containerDefaults("1", "1Gi", "1", "1Gi").policy("deny", denyIngress).create()
		p := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(p)
		foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged-" + string(p.Spec.CustomerIdentifier)}}
		Expect(fw.Client.Create(ctx, foreign)).To(Succeed())
		Expect(fw.Client.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged", Namespace: foreign.Name},
			Spec: corev1.ResourceQuotaSpec{Hard: resources("pods", "1")}})).To(Succeed())
		Expect(fw.Client.Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged", Namespace: foreign.Name},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Max: resources("cpu", "1")}}}})).To(Succeed())
		Expect(fw.Client.Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "unmanaged", Namespace: foreign.Name},
			Spec: denyIngress})).To(Succeed())
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
				g.Expect(rb.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue),
					"cached RoleBinding %s/%s", rb.Namespace, rb.Name)
			}

			var quotas corev1.ResourceQuotaList
			g.Expect(cache.List(ctx, &quotas)).To(Succeed())
			g.Expect(quotas.Items).NotTo(BeEmpty())
			var limits corev1.LimitRangeList
			g.Expect(cache.List(ctx, &limits)).To(Succeed())
			g.Expect(limits.Items).NotTo(BeEmpty())
			var policies networkingv1.NetworkPolicyList
			g.Expect(cache.List(ctx, &policies)).To(Succeed())
			g.Expect(policies.Items).NotTo(BeEmpty())
			objs := make([]client.Object, 0, len(quotas.Items)+len(limits.Items)+len(policies.Items))
			for i := range quotas.Items {
				objs = append(objs, &quotas.Items[i])
			}
			for i := range limits.Items {
				objs = append(objs, &limits.Items[i])
			}
			for i := range policies.Items {
				objs = append(objs, &policies.Items[i])
			}
			for _, obj := range objs {
				g.Expect(obj.GetLabels()).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue),
					"cached %T %s/%s", obj, obj.GetNamespace(), obj.GetName())
			}
		}).Should(Succeed())
	})
})
