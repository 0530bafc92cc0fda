package replicator_test

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const psaEnforce = "pod-security.kubernetes.io/enforce"

// ensureClusterRole creates a ClusterRole granting rules unless it exists.
func ensureClusterRole(name string, rules ...rbacv1.PolicyRule) {
	GinkgoHelper()
	err := fw.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})
	Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
}

var readSecrets = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}

var _ = Describe("A landing zone", func() {
	It("gives its projects the quota with their overrides, the limit range, the policies and the namespace labels", func() {
		z := aZone().podSecurity("baseline").
			hard("requests.cpu", "4", "limits.memory", "16Gi", "pods", "50").
			maxQuota("requests.cpu", "16").
			containerDefaults("500m", "512Mi", "100m", "128Mi").
			policy("default-deny-ingress", denyIngress).policy("allow-dns", allowDNS).
			create()
		plain := aProject().zone(z.Name).users("admin", "alice").create()
		bigger := aProject().zone(z.Name).users("admin", "alice").quota("requests.cpu", "8", "requests.memory", "32Gi").create()
		expectReady(plain)
		expectReady(bigger)

		Eventually(func(g Gomega) {
			q := getQuota(g, plain)
			expectMarked(g, q, plain, z.Name)
			g.Expect(hardOf(q)).To(Equal(map[string]string{"requests.cpu": "4", "limits.memory": "16Gi", "pods": "50"}))
			// Merged key by key: requests.cpu overridden, requests.memory added, the rest kept.
			g.Expect(hardOf(getQuota(g, bigger))).
				To(Equal(map[string]string{"requests.cpu": "8", "requests.memory": "32Gi", "limits.memory": "16Gi", "pods": "50"}))

			lr := getLimitRange(g, plain)
			expectMarked(g, lr, plain, z.Name)
			g.Expect(lr.Spec.Limits).To(HaveLen(1))
			g.Expect(lr.Spec.Limits[0].Default.Cpu().String()).To(Equal("500m"))
			g.Expect(lr.Spec.Limits[0].DefaultRequest.Memory().String()).To(Equal("128Mi"))

			deny := getNetworkPolicy(g, plain, "default-deny-ingress")
			expectMarked(g, deny, plain, z.Name)
			g.Expect(deny.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
			dns := getNetworkPolicy(g, plain, "allow-dns")
			g.Expect(dns.Spec.Egress[0].Ports[0].Port.IntValue()).To(Equal(53))

			ns := getNamespace(g, plain.NamespaceName())
			g.Expect(ns.Labels).To(HaveKeyWithValue(psaEnforce, "baseline"))
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue))

			current := &meshv1.MeshProject{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(plain), current)).To(Succeed())
			g.Expect(current.Status.LandingZone).To(Equal(z.Name))
			zone := &meshv1.MeshLandingZone{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(z), zone)).To(Succeed())
			g.Expect(zone.Status.Projects).To(BeEquivalentTo(2))
			g.Expect(zone.Status.ProjectNames).To(ConsistOf(plain.Name, bigger.Name))
			g.Expect(zone.Finalizers).To(ContainElement(meshv1.LandingZoneFinalizer))
		}).Should(Succeed())
	})

	It("refuses a quota above the zone's maximum, naming the resource and both values, and keeps the last accepted one", func() {
		z := aZone().hard("requests.cpu", "4", "pods", "50").maxQuota("requests.cpu", "16", "pods", "100").create()
		p := aProject().zone(z.Name).users("admin", "alice").quota("requests.cpu", "8").create()
		expectReady(p)
		Eventually(func(g Gomega) {
			g.Expect(getQuota(g, p).Spec.Hard[corev1.ResourceRequestsCPU]).To(Equal(resource.MustParse("8")))
		}).Should(Succeed())

		update(p, func(p *meshv1.MeshProject) { p.Spec.Quota = resources("requests.cpu", "32", "pods", "60") })
		message := expectNotReady(p, meshv1.ReasonQuotaAboveMaximum)
		Expect(message).To(ContainSubstring("requests.cpu 32 is above the maximum 16"))
		Expect(message).To(ContainSubstring(z.Name))
		Consistently(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"requests.cpu": "8", "pods": "50"}))
		}, "1s").Should(Succeed())

		update(p, func(p *meshv1.MeshProject) { p.Spec.Quota = resources("requests.cpu", "16", "pods", "60") })
		expectReady(p)
		Eventually(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"requests.cpu": "16", "pods": "60"}))
		}).Should(Succeed())
	})

	It("maps a role to several ClusterRoles, one RoleBinding each, and the API server grants their access", func() {
		ensureClusterRole("lz-secret-reader", readSecrets)
		z := aZone().mapping("admin", "admin").mapping("reader", "view", "lz-secret-reader").create()
		p := aProject().zone(z.Name).users("admin", "alice").users("reader", "bob").create()
		expectReady(p)
		Eventually(func(g Gomega) {
			admin := getRoleBinding(g, p, "admin")
			g.Expect(admin.RoleRef.Name).To(Equal("admin"))
			for _, cr := range []string{"view", "lz-secret-reader"} {
				rb := &rbacv1.RoleBinding{}
				key := client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.MultiRoleBindingName("reader", cr)}
				g.Expect(fw.Client.Get(ctx, key, rb)).To(Succeed())
				g.Expect(rb.RoleRef.Name).To(Equal(cr))
				g.Expect(rb.Subjects).To(ConsistOf(user("mesh:bob")))
				g.Expect(rb.Labels).To(HaveKeyWithValue(meshv1.LabelRole, "reader"))
			}
			// SubjectAccessReviews: view lets bob list pods, the custom role
			// read secrets; neither lets him create Deployments.
			g.Expect(can(g, "mesh:bob", "list", "", "pods", p.NamespaceName())).To(BeTrue())
			g.Expect(can(g, "mesh:bob", "get", "", "secrets", p.NamespaceName())).To(BeTrue())
			g.Expect(canCreateDeployments(g, p.NamespaceName(), "mesh:bob")).To(BeFalse())
			g.Expect(canCreateDeployments(g, p.NamespaceName(), "mesh:alice")).To(BeTrue())
			g.Expect(can(g, "mesh:bob", "get", "", "secrets", "default")).To(BeFalse())
		}).Should(Succeed())
	})

	It("reports a role its zone does not map, although --role-mapping does", func() {
		z := aZone().mapping("admin", "admin").create()
		p := aProject().zone(z.Name).users("admin", "alice").users("view", "bob").create()
		message := expectNotReady(p, meshv1.ReasonUnknownRole)
		Expect(message).To(ContainSubstring(`role "view" is not mapped to a ClusterRole by landing zone "` + z.Name + `"`))
		Eventually(func(g Gomega) { getRoleBinding(g, p, "admin") }).Should(Succeed())
	})

	It("changes a role's ClusterRoles without a moment in which the role's users have no binding", func() {
		ensureClusterRole("lz-secret-reader", readSecrets)
		z := aZone().mapping("reader", "view").create()
		p := aProject().zone(z.Name).users("reader", "bob").create()
		expectReady(p)
		Eventually(func(g Gomega) { g.Expect(getRoleBinding(g, p, "reader").RoleRef.Name).To(Equal("view")) }).Should(Succeed())

		// Watch every change to the namespace's RoleBindings while the
		// mapping changes twice: from one ClusterRole to another (same
		// name, new roleRef), then to two.
		w, err := watchClient().Watch(ctx, &rbacv1.RoleBindingList{}, client.InNamespace(p.NamespaceName()))
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.RoleMappings[0].ClusterRoles = []meshv1.ClusterRoleName{"lz-secret-reader"}
		})
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "reader").RoleRef.Name).To(Equal("lz-secret-reader"))
			g.Expect(can(g, "mesh:bob", "get", "", "secrets", p.NamespaceName())).To(BeTrue())
		}).Should(Succeed())
		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.RoleMappings[0].ClusterRoles = []meshv1.ClusterRoleName{"view", "lz-secret-reader"}
		})
		Eventually(func(g Gomega) {
			var list rbacv1.RoleBindingList
			g.Expect(fw.Client.List(ctx, &list, client.InNamespace(p.NamespaceName()))).To(Succeed())
			names := make([]string, 0, len(list.Items))
			for _, rb := range list.Items {
				names = append(names, rb.Name)
			}
			g.Expect(names).To(ConsistOf(replicator.MultiRoleBindingName("reader", "view"),
				replicator.MultiRoleBindingName("reader", "lz-secret-reader")))
		}).Should(Succeed())

		// Replay the watch up to the final state: bob held a binding after
		// every single event.
		final := map[string]bool{replicator.MultiRoleBindingName("reader", "view"): true,
			replicator.MultiRoleBindingName("reader", "lz-secret-reader"): true}
		bindings := map[string]bool{}
		events := 0
		deadline := time.After(framework.Timeout)
		for !equalSets(bindings, final) {
			select {
			case ev := <-w.ResultChan():
				rb, ok := ev.Object.(*rbacv1.RoleBinding)
				if !ok {
					continue
				}
				events++
				if ev.Type == watch.Deleted {
					delete(bindings, rb.Name)
				} else {
					bindings[rb.Name] = slices.Contains(rb.Subjects, user("mesh:bob"))
				}
				held := false
				for _, has := range bindings {
					held = held || has
				}
				Expect(held).To(BeTrue(), "after %s of RoleBinding %s bob held no binding", ev.Type, rb.Name)
			case <-deadline:
				Fail("the watch did not reach the final RoleBindings")
			}
		}
		// The first ADDED, two replacements through a bridge, one more binding.
		Expect(events).To(BeNumerically(">=", 6))
	})

	It("keeps a role's binding while the ClusterRole it is remapped to does not exist yet", func() {
		z := aZone().mapping("reader", "view").create()
		p := aProject().zone(z.Name).users("reader", "bob").create()
		expectReady(p)
		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.RoleMappings[0].ClusterRoles = []meshv1.ClusterRoleName{"lz-not-yet"}
		})
		message := expectNotReady(p, meshv1.ReasonClusterRoleNotFound)
		Expect(message).To(ContainSubstring(`ClusterRole "lz-not-yet"`))
		Consistently(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "reader").RoleRef.Name).To(Equal("view"))
			g.Expect(can(g, "mesh:bob", "list", "", "pods", p.NamespaceName())).To(BeTrue())
		}, "1s").Should(Succeed())
	})

	It("reaches every project of the zone when the zone is edited, and deletes what the zone no longer has", func() {
		z := aZone().podSecurity("baseline").hard("pods", "50").
			containerDefaults("500m", "512Mi", "100m", "128Mi").policy("default-deny-ingress", denyIngress).create()
		projects := make([]*meshv1.MeshProject, 0, 3)
		for range 3 {
			projects = append(projects, aProject().zone(z.Name).users("admin", "alice").create())
		}
		for _, p := range projects {
			expectReady(p)
		}
		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.ResourceQuota.Hard = resources("pods", "70")
			z.Spec.LimitRange = nil
			z.Spec.NetworkPolicies = []meshv1.LandingZoneNetworkPolicy{{Name: "allow-dns", Spec: allowDNS}}
			z.Spec.NamespaceLabels = map[string]meshv1.LabelValue{"example.com/tier": "gold"}
		})
		Eventually(func(g Gomega) {
			for _, p := range projects {
				g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "70"}))
				expectGone(g, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Namespace: p.NamespaceName(), Name: replicator.LimitRangeName}})
				expectGone(g, networkPolicyOf(p, "default-deny-ingress"))
				getNetworkPolicy(g, p, "allow-dns")
				ns := getNamespace(g, p.NamespaceName())
				g.Expect(ns.Labels).NotTo(HaveKey(psaEnforce))
				g.Expect(ns.Labels).To(HaveKeyWithValue("example.com/tier", "gold"))
			}
		}).Should(Succeed())

		updateZone(z, func(z *meshv1.MeshLandingZone) { z.Spec.ResourceQuota = nil })
		Eventually(func(g Gomega) {
			for _, p := range projects {
				expectGone(g, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: p.NamespaceName(), Name: replicator.ResourceQuotaName}})
			}
		}).Should(Succeed())
	})

	It("gives a project that moves to another zone the other zone's objects", func() {
		from := aZone().podSecurity("privileged").hard("pods", "10").policy("from-policy", denyIngress).create()
		to := aZone().podSecurity("restricted").hard("pods", "20").policy("to-policy", denyIngress).create()
		p := aProject().zone(from.Name).users("admin", "alice").create()
		expectReady(p)
		Eventually(func(g Gomega) { getNetworkPolicy(g, p, "from-policy") }).Should(Succeed())

		update(p, func(p *meshv1.MeshProject) { p.Spec.LandingZone = to.Name })
		expectReady(p)
		Eventually(func(g Gomega) {
			q := getQuota(g, p)
			g.Expect(hardOf(q)).To(Equal(map[string]string{"pods": "20"}))
			expectMarked(g, q, p, to.Name)
			expectMarked(g, getNetworkPolicy(g, p, "to-policy"), p, to.Name)
			expectGone(g, networkPolicyOf(p, "from-policy"))
			g.Expect(getNamespace(g, p.NamespaceName()).Labels).To(HaveKeyWithValue(psaEnforce, "restricted"))
			// Metering attributes the namespace's usage to its zone by this label.
			g.Expect(getNamespace(g, p.NamespaceName()).Labels).To(HaveKeyWithValue(meshv1.LabelLandingZone, to.Name))
			zone := &meshv1.MeshLandingZone{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(from), zone)).To(Succeed())
			g.Expect(zone.Status.Projects).To(BeZero())
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(to), zone)).To(Succeed())
			g.Expect(zone.Status.ProjectNames).To(Equal([]string{p.Name}))
		}).Should(Succeed())
	})

	It("corrects drift on every kind it manages; tenants' admins may edit NetworkPolicies but not quotas or limit ranges", func() {
		z := aZone().podSecurity("baseline").hard("pods", "50").
			containerDefaults("500m", "512Mi", "100m", "128Mi").policy("default-deny-ingress", denyIngress).create()
		p := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(p)

		Eventually(func(g Gomega) {
			g.Expect(can(g, "mesh:alice", "update", "networking.k8s.io", "networkpolicies", p.NamespaceName())).To(BeTrue())
			g.Expect(can(g, "mesh:alice", "update", "", "resourcequotas", p.NamespaceName())).To(BeFalse())
			g.Expect(can(g, "mesh:alice", "update", "", "limitranges", p.NamespaceName())).To(BeFalse())
		}).Should(Succeed())

		// Edited by hand.
		Eventually(func(g Gomega) {
			q := getQuota(g, p)
			q.Spec.Hard = resources("pods", "5000")
			// Not the operator's: it stays through the correction.
			q.Annotations[corev1.LastAppliedConfigAnnotation] = `{"kept":true}`
			g.Expect(fw.Client.Update(ctx, q)).To(Succeed())
			lr := getLimitRange(g, p)
			lr.Spec.Limits[0].Default = resources("cpu", "64", "memory", "512Mi")
			g.Expect(fw.Client.Update(ctx, lr)).To(Succeed())
			np := getNetworkPolicy(g, p, "default-deny-ingress")
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}} // allow all
			g.Expect(fw.Client.Update(ctx, np)).To(Succeed())
			ns := getNamespace(g, p.NamespaceName())
			ns.Labels[psaEnforce] = "privileged"
			g.Expect(fw.Client.Update(ctx, ns)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			q := getQuota(g, p)
			g.Expect(hardOf(q)).To(Equal(map[string]string{"pods": "50"}))
			g.Expect(q.Annotations).To(HaveKeyWithValue(corev1.LastAppliedConfigAnnotation, `{"kept":true}`))
			g.Expect(getLimitRange(g, p).Spec.Limits[0].Default.Cpu().String()).To(Equal("500m"))
			g.Expect(getNetworkPolicy(g, p, "default-deny-ingress").Spec.Ingress).To(BeEmpty())
			g.Expect(getNamespace(g, p.NamespaceName()).Labels).To(HaveKeyWithValue(psaEnforce, "baseline"))
		}).Should(Succeed())

		// Deleted by hand.
		var uids []string
		Eventually(func(g Gomega) {
			for _, obj := range []client.Object{getQuota(g, p), getLimitRange(g, p), getNetworkPolicy(g, p, "default-deny-ingress")} {
				uids = append(uids, string(obj.GetUID()))
				g.Expect(fw.Client.Delete(ctx, obj)).To(Succeed())
			}
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			for _, obj := range []client.Object{getQuota(g, p), getLimitRange(g, p), getNetworkPolicy(g, p, "default-deny-ingress")} {
				g.Expect(uids).NotTo(ContainElement(string(obj.GetUID())))
			}
		}).Should(Succeed())
	})

	It("never touches a tenant's own policies, and replaces a policy with its name that it did not create", func() {
		z := aZone().policy("default-deny-ingress", denyIngress).create()
		p := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(p)
		own := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "allow-frontend", Namespace: p.NamespaceName()},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}},
		}
		Expect(fw.Client.Create(ctx, own)).To(Succeed())
		squatter := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: replicator.NetworkPolicyName("allow-dns"), Namespace: p.NamespaceName(),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "elsewhere", UID: "0000"}}},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		}
		Expect(fw.Client.Create(ctx, squatter)).To(Succeed())

		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.NetworkPolicies = []meshv1.LandingZoneNetworkPolicy{{Name: "allow-dns", Spec: allowDNS}}
		})
		Eventually(func(g Gomega) {
			expectGone(g, networkPolicyOf(p, "default-deny-ingress"))
			policy := getNetworkPolicy(g, p, "allow-dns")
			expectMarked(g, policy, p, z.Name)
			g.Expect(policy.UID).NotTo(Equal(squatter.UID))
			g.Expect(policy.OwnerReferences).To(BeEmpty())
			g.Expect(policy.Spec.Egress).NotTo(BeEmpty(), "the zone's spec, not the squatter's")
		}).Should(Succeed())
		expectReady(p)
		after := &networkingv1.NetworkPolicy{}
		Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(own), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(own.ResourceVersion), "the tenant's own policy was changed")
	})

	It("gives a new project whose zone does not exist no namespace until the zone appears", func() {
		z := aZone().hard("pods", "50").build()
		p := aProject().zone(z.Name).users("admin", "alice").create()
		message := expectNotReady(p, meshv1.ReasonLandingZoneNotFound)
		Expect(message).To(ContainSubstring(`landing zone "` + z.Name + `" does not exist`))
		Expect(message).To(ContainSubstring("no namespace is created"))
		expectConditions(p, map[string]stepState{
			meshv1.LandingZoneReadyCondition:  {metav1.ConditionFalse, meshv1.ReasonLandingZoneNotFound},
			meshv1.NamespaceReadyCondition:    {metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone},
			meshv1.RoleBindingsReadyCondition: {metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace},
			meshv1.BaselineReadyCondition:     {metav1.ConditionUnknown, meshv1.ReasonWaitingForLandingZone},
			meshv1.ReadyCondition:             {metav1.ConditionFalse, meshv1.ReasonLandingZoneNotFound},
		})
		Consistently(func(g Gomega) {
			expectGone(g, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.NamespaceName()}})
		}, "1s").Should(Succeed())

		Expect(fw.Client.Create(ctx, z)).To(Succeed())
		expectReady(p)
		expectConditions(p, allStepsTrue)
		Eventually(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "50"}))
			g.Expect(getRoleBinding(g, p, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
		}).Should(Succeed())
	})

	It("keeps mapping roles through the zone a project was in while the zone it names is missing", func() {
		z := aZone().mapping("reader", "view").hard("pods", "50").create()
		p := aProject().zone(z.Name).users("reader", "bob").create()
		expectReady(p)
		update(p, func(p *meshv1.MeshProject) { p.Spec.LandingZone = z.Name + "-typo" })
		expectNotReady(p, meshv1.ReasonLandingZoneNotFound)
		Consistently(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "reader").Subjects).To(ConsistOf(user("mesh:bob")))
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "50"}))
		}, "1s").Should(Succeed())
	})

	It("keeps serving the projects of a disabled zone and takes no new ones", func() {
		z := aZone().hard("pods", "50").create()
		member := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(member)
		updateZone(z, func(z *meshv1.MeshLandingZone) {
			z.Spec.Disabled = true
			z.Spec.ResourceQuota.Hard = resources("pods", "40")
		})
		Eventually(func(g Gomega) { g.Expect(hardOf(getQuota(g, member))).To(Equal(map[string]string{"pods": "40"})) }).Should(Succeed())
		expectReady(member)

		newcomer := aProject().zone(z.Name).users("admin", "alice").create()
		message := expectNotReady(newcomer, meshv1.ReasonLandingZoneDisabled)
		Expect(message).To(ContainSubstring(`landing zone "` + z.Name + `" is disabled`))
		Consistently(func(g Gomega) {
			q := &corev1.ResourceQuota{}
			err := fw.Client.Get(ctx, client.ObjectKey{Namespace: newcomer.NamespaceName(), Name: replicator.ResourceQuotaName}, q)
			g.Expect(client.IgnoreNotFound(err)).To(Succeed())
			g.Expect(err).To(HaveOccurred(), "a newcomer got the disabled zone's quota")
		}, "1s").Should(Succeed())
	})

	It("cannot be deleted while a project is in it: its finalizer holds it and its status names the projects", func() {
		z := aZone().hard("pods", "50").create()
		p := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(p)
		Eventually(func(g Gomega) {
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(z), z)).To(Succeed())
			g.Expect(z.Finalizers).To(ContainElement(meshv1.LandingZoneFinalizer))
		}).Should(Succeed())

		Expect(fw.Client.Delete(ctx, z)).To(Succeed())
		Consistently(func(g Gomega) {
			held := &meshv1.MeshLandingZone{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(z), held)).To(Succeed())
			g.Expect(held.DeletionTimestamp).NotTo(BeNil())
			g.Expect(held.Status.ProjectNames).To(Equal([]string{p.Name}))
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "50"}))
		}, "1s").Should(Succeed())
		expectReady(p)

		// Leaving the zone for none (there is no default zone) lets the
		// zone go, but the namespace keeps its quota.
		update(p, func(p *meshv1.MeshProject) { p.Spec.LandingZone = "" })
		Eventually(func(g Gomega) {
			expectGone(g, &meshv1.MeshLandingZone{ObjectMeta: metav1.ObjectMeta{Name: z.Name}})
		}).Should(Succeed())
		Expect(expectNotReady(p, meshv1.ReasonLandingZoneRequired)).To(ContainSubstring(`keeps the baseline of landing zone "` + z.Name + `"`))
		Consistently(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "50"}))
		}, "1s").Should(Succeed())
	})

	It("reports a ClusterRole the operator may not bind and says to add it to the bind list", func() {
		ensureClusterRole("lz-unbindable", readSecrets)
		z := aZone().mapping("admin", "admin").mapping("reader", "lz-unbindable").create()
		p := aProject().zone(z.Name).users("admin", "alice").users("reader", "bob").create()
		message := expectNotReady(p, meshv1.ReasonClusterRoleNotBindable)
		Expect(message).To(ContainSubstring(`may not bind ClusterRole "lz-unbindable"`))
		Expect(message).To(ContainSubstring(`add "lz-unbindable" to the resourceNames of the bind rule of ClusterRole meshfed-service`))
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
			expectGone(g, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: p.NamespaceName(),
				Name: replicator.RoleBindingName("reader")}})
			g.Expect(can(g, "mesh:bob", "get", "", "secrets", p.NamespaceName())).To(BeFalse())
		}).Should(Succeed())
	})
})

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// watchClient is a cluster-admin client that can watch.
func watchClient() client.WithWatch {
	GinkgoHelper()
	c, err := client.NewWithWatch(fw.Config, client.Options{Scheme: fw.Client.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	return c
}
