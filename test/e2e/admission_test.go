package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// impersonating is a client of the test API server acting as user, an
// authenticated member of groups.
func impersonating(fw *framework.Framework, user string, groups ...string) client.Client {
	GinkgoHelper()
	cfg := rest.CopyConfig(fw.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	ic, err := client.New(cfg, client.Options{Scheme: operator.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return ic
}

// breakGlassMember binds the group platform-admins, which the tests put in
// admissionPolicies.breakGlassGroups, to cluster-admin and returns a client
// acting as one of its members.
func breakGlassMember(fw *framework.Framework) client.Client {
	GinkgoHelper()
	Expect(fw.Client.Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "platform-admins"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "platform-admins"}},
	})).To(Succeed())
	return impersonating(fw, "oncall", "platform-admins")
}

// The chart installed into an API server that enforces
// ValidatingAdmissionPolicies, the replicator running under its token: the
// specs check what the policies refuse, whom they let through, and that the
// operator still converges, corrects drift and deletes under them. They
// share the control plane and run in order; a failing one does not stop
// the others (ContinueOnFailure), as the subtests they were did not.
var _ = Describe("The chart's admission policies", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()
	var (
		fw     *framework.Framework
		c      client.Client
		alice  client.Client
		oncall client.Client
	)
	BeforeAll(func() {
		dir := GinkgoT().TempDir()
		var adminKubeconfig string
		fw, adminKubeconfig = startControlPlane(dir)
		c = fw.Client
		_, err := framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
			"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
			"--set", "admissionPolicies.breakGlassGroups={platform-admins}", "--set", "metering.enabled=false")
		Expect(err).NotTo(HaveOccurred())
		Expect(fw.FillAggregatedClusterRoles(ctx)).To(Succeed())
		runComponent(fw, dir, "meshfed-service", "--components=replicator")
		alice = impersonating(fw, "mesh:alice")
		oncall = breakGlassMember(fw)
	})

	as := func(user string, groups ...string) client.Client { return impersonating(fw, user, groups...) }
	// project is a project of the customer whose roles bind alice.
	project := func(name, customer string, roles ...string) *meshv1.MeshProject {
		b := framework.Project(customer, name).Named(name)
		for _, r := range roles {
			b.Users(r, "alice")
		}
		return b.Build()
	}
	// refused waits until the policies refuse obj (they act a moment after
	// a policy or a zone changes; a dry run persists nothing meanwhile),
	// then checks that a real create is refused too.
	refused := func(obj client.Object, message string) {
		GinkgoHelper()
		Eventually(func() error { return c.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll) }).
			Should(MatchError(ContainSubstring(message)))
		Expect(c.Create(ctx, obj)).To(MatchError(ContainSubstring(message)))
	}
	updateZone := func(zone *meshv1.MeshLandingZone, mutate func(*meshv1.MeshLandingZone)) {
		GinkgoHelper()
		Eventually(func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(zone), zone); err != nil {
				return err
			}
			mutate(zone)
			return c.Update(ctx, zone)
		}).Should(Succeed())
	}

	It("refuses MeshProjects their mapping or zone does not allow, never blocking their status, metadata or deletion", func() {
		refused(project("shop", "acme", "admin", "owner"), `role "owner" is not mapped to a ClusterRole; mapped roles: admin, edit, view`)
		refused(project("system", "kube", "admin"), `customerIdentifier "kube" is reserved`)
		refused(project("console", "openshift"), `customerIdentifier "openshift" is reserved`)

		zone := &meshv1.MeshLandingZone{ObjectMeta: metav1.ObjectMeta{Name: "small"}, Spec: meshv1.MeshLandingZoneSpec{
			RoleMappings: []meshv1.LandingZoneRoleMapping{{Role: "reader", ClusterRoles: []meshv1.ClusterRoleName{"view"}}},
			MaxQuota:     corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("4")},
		}}
		Expect(c.Create(ctx, zone)).To(Succeed())
		inZone := func(p *meshv1.MeshProject) *meshv1.MeshProject { p.Spec.LandingZone = "small"; return p }
		refused(inZone(project("zoned", "acme", "admin")),
			`role "admin" is not mapped to a ClusterRole in landing zone "small"; mapped roles: reader`)
		overQuota := inZone(project("zoned", "acme", "reader"))
		overQuota.Spec.Quota = corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("8")}
		refused(overQuota, `quota requests.cpu: 8 is above the maximum 4 of landing zone "small"`)
		ok := inZone(project("zoned", "acme", "reader"))
		ok.Spec.Quota = corev1.ResourceList{corev1.ResourceRequestsCPU: resource.MustParse("3500m")}
		Expect(c.Create(ctx, ok)).To(Succeed(), "within the zone's mapping and maximum")
		// It is in the zone once the replicator has made its first pass; a
		// zone disabled before then would keep it out.
		Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ok), ok)).To(Succeed())
			g.Expect(ok.Status.LandingZone).To(Equal("small"))
		}).Should(Succeed(), "the project joins its zone")

		// A limit of the zone without a maximum may be lowered, not raised.
		updateZone(zone, func(z *meshv1.MeshLandingZone) {
			z.Spec.ResourceQuota = &meshv1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}}
		})
		raised := inZone(project("raised", "acme", "reader"))
		raised.Spec.Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("20")}
		refused(raised, `quota pods: 20 is above 10, the limit of landing zone "small", which sets no maximum for it`)
		lowered := inZone(project("lowered", "acme", "reader"))
		lowered.Spec.Quota = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")}
		Expect(c.Create(ctx, lowered, client.DryRunAll)).To(Succeed(), "a zone limit lowered")

		// Leaving the zone for none (the chart sets no default zone) would
		// leave the namespace without the zone's quota.
		Eventually(func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(ok), ok); err != nil {
				return err
			}
			left := ok.DeepCopy()
			left.Spec.LandingZone = ""
			return c.Update(ctx, left)
		}).Should(MatchError(ContainSubstring(`the project is in landing zone "small" and there is no default landing zone`)))

		// A disabled zone keeps its projects but takes no new ones.
		updateZone(zone, func(z *meshv1.MeshLandingZone) { z.Spec.Disabled = true })
		refused(inZone(project("late", "acme", "reader")), `landing zone "small" is disabled`)
		Eventually(func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(ok), ok); err != nil {
				return err
			}
			ok.Spec.RoleBindings[0].Groups = []meshv1.SubjectName{"auditors"}
			return c.Update(ctx, ok)
		}).Should(Succeed(), "an existing project of a disabled zone may still change")

		// A project admitted before its mapping changed is reported in
		// status; its status, metadata and deletion are never blocked.
		updateZone(zone, func(z *meshv1.MeshLandingZone) {
			z.Spec.RoleMappings = []meshv1.LandingZoneRoleMapping{{Role: "viewer", ClusterRoles: []meshv1.ClusterRoleName{"view"}}}
		})
		Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(ok), ok)).To(Succeed())
			cond := meta.FindStatusCondition(ok.Status.Conditions, meshv1.ReadyCondition)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(meshv1.ReasonUnknownRole), "the operator's status write went through")
		}).Should(Succeed())
		Eventually(func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(ok), ok); err != nil {
				return err
			}
			ok.Labels = map[string]string{"team": "billing"}
			return c.Update(ctx, ok)
		}).Should(Succeed(), "a metadata-only change")
		Expect(c.Delete(ctx, ok)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(ok), ok))
		}).Should(BeTrue(), "the operator removed its finalizer")
	})

	It("lets only break glass change what the operator manages, while the operator converges, corrects drift and deletes", func() {
		p := project("webshop", "acme", "admin")
		Expect(c.Create(ctx, p)).To(Succeed())
		ns := p.NamespaceName()
		managed := &rbacv1.RoleBinding{}
		key := client.ObjectKey{Namespace: ns, Name: replicator.RoleBindingName("admin")}
		Eventually(func() error { return c.Get(ctx, key, managed) }).Should(Succeed(), "the operator converges under the policies")
		forbidden := ContainSubstring("managed by meshstack-operator from MeshProject webshop; change the MeshProject instead")

		// alice is admin of the namespace: RBAC lets her edit RoleBindings
		// there, the policy does not.
		edited := managed.DeepCopy()
		edited.Subjects = append(edited.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:friend"})
		Eventually(func() error { return alice.Update(ctx, edited) }).Should(MatchError(forbidden))
		Expect(alice.Delete(ctx, managed.DeepCopy())).To(MatchError(forbidden))
		sneaky := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sneaky", Labels: map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:friend"}},
		}
		Expect(alice.Create(ctx, sneaky)).To(MatchError(ContainSubstring("managed by meshstack-operator")))
		// Cluster admins are not exempt either: only break glass is.
		Expect(c.Update(ctx, edited)).To(MatchError(forbidden))

		// Her own objects are hers.
		own := sneaky.DeepCopy()
		own.Name, own.Labels = "friend-can-view", nil
		Expect(alice.Create(ctx, own)).To(Succeed())
		Expect(alice.Create(ctx, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-web"},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		})).To(Succeed())

		// A break-glass member may edit; the operator corrects the drift.
		Expect(oncall.Update(ctx, edited)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(c.Get(ctx, key, managed)).To(Succeed())
			g.Expect(managed.Subjects).To(HaveLen(1), "drift corrected under the policies")
		}, framework.Timeout).Should(Succeed())

		// Deleting the project deletes the namespace and its bindings.
		Expect(c.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			var namespace corev1.Namespace
			err := c.Get(ctx, client.ObjectKey{Name: ns}, &namespace)
			g.Expect(apierrors.IsNotFound(err) || !namespace.DeletionTimestamp.IsZero()).To(BeTrue(), "namespace %s not deleted", ns)
			g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(p), p))).To(BeTrue())
		}, framework.Timeout).Should(Succeed())
	})
	It("reserves the ownership label and annotation to the operator's ServiceAccount", func() {
		reserved := ContainSubstring("only objects managed by meshstack-operator carry the label " +
			"app.kubernetes.io/managed-by=meshstack-operator or the annotation meshcloud.io/meshproject: only its ServiceAccount may set them")
		// The attack: a namespace with the ownership annotation alone, so
		// that a later MeshProject "shop" of customer "acme" adopts it.
		planted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-shop",
			Annotations: map[string]string{meshv1.AnnotationMeshProject: "shop"}}}
		Eventually(func() error { return c.Create(ctx, planted.DeepCopy(), client.DryRunAll) }).Should(MatchError(reserved))
		Expect(c.Create(ctx, planted)).To(MatchError(reserved), "not even a cluster admin")
		// Nor may it be added to a namespace that exists.
		plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "acme-later"}}
		Expect(c.Create(ctx, plain)).To(Succeed())
		plain.Annotations = map[string]string{meshv1.AnnotationMeshProject: "later"}
		Expect(c.Update(ctx, plain)).To(MatchError(reserved))

		p := project("annotated", "acme", "admin")
		Expect(c.Create(ctx, p)).To(Succeed())
		managed := &rbacv1.RoleBinding{}
		key := client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName("admin")}
		Eventually(func() error { return c.Get(ctx, key, managed) }).Should(Succeed())
		forbidden := ContainSubstring("managed by meshstack-operator from MeshProject annotated; change the MeshProject instead")
		var ns corev1.Namespace
		Expect(c.Get(ctx, client.ObjectKey{Name: p.NamespaceName()}, &ns)).To(Succeed())
		for name, mutate := range map[string]func(a map[string]string){
			"changed": func(a map[string]string) { a[meshv1.AnnotationMeshProject] = "other" },
			"removed": func(a map[string]string) { delete(a, meshv1.AnnotationMeshProject) },
		} {
			n := ns.DeepCopy()
			mutate(n.Annotations)
			Expect(c.Update(ctx, n)).To(MatchError(forbidden), "namespace annotation %s by a cluster admin", name)
			rb := managed.DeepCopy()
			mutate(rb.Annotations)
			Expect(alice.Update(ctx, rb)).To(MatchError(forbidden), "RoleBinding annotation %s by the project admin", name)
		}
		// A project admin's own RoleBinding may not claim to be the operator's.
		own := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.NamespaceName(), Name: "mine",
				Annotations: map[string]string{meshv1.AnnotationMeshProject: "annotated"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:friend"}},
		}
		Expect(alice.Create(ctx, own)).To(MatchError(reserved))
	})

	It("lets only kube-system's controllers write the status and finalizers of managed quotas and namespaces", func() {
		zone := &meshv1.MeshLandingZone{ObjectMeta: metav1.ObjectMeta{Name: "quota"}, Spec: meshv1.MeshLandingZoneSpec{
			ResourceQuota: &meshv1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}},
		}}
		Expect(c.Create(ctx, zone)).To(Succeed())
		p := project("quoted", "acme", "admin")
		p.Spec.LandingZone = zone.Name
		Expect(c.Create(ctx, p)).To(Succeed())
		quota := &corev1.ResourceQuota{}
		Eventually(func() error {
			return c.Get(ctx, client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.ResourceQuotaName}, quota)
		}).Should(Succeed())
		var ns corev1.Namespace
		Expect(c.Get(ctx, client.ObjectKey{Name: p.NamespaceName()}, &ns)).To(Succeed())
		// Exempt identities act with cluster-admin rights (system:masters)
		// so that only the policy decides.
		controller := func(name string) client.Client { return as(name, "system:masters") }
		const quotaController = "system:serviceaccount:kube-system:resourcequota-controller"

		// A used of zero would lift the quota.
		lifted := quota.DeepCopy()
		lifted.Status.Hard = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}
		lifted.Status.Used = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}
		quotaOnly := ContainSubstring("resourcequotas/status of " + p.NamespaceName() + "/" + replicator.ResourceQuotaName +
			" is written only by the resource quota controller of kube-system")
		Eventually(func() error { return c.Status().Update(ctx, lifted.DeepCopy(), client.DryRunAll) }).Should(MatchError(quotaOnly))
		Expect(c.Status().Update(ctx, lifted.DeepCopy())).To(MatchError(quotaOnly), "a cluster admin")
		for _, name := range []string{quotaController, "system:apiserver", "system:kube-controller-manager"} {
			Expect(controller(name).Status().Update(ctx, lifted.DeepCopy(), client.DryRunAll)).To(Succeed(), name)
		}
		Expect(controller("system:serviceaccount:kube-system:namespace-controller").Status().Update(ctx, lifted.DeepCopy(), client.DryRunAll)).
			To(MatchError(quotaOnly), "the namespace controller has no business with quotas")

		nsOnly := ContainSubstring(" of " + p.NamespaceName() + " is written only by the namespace controller of kube-system")
		status := ns.DeepCopy()
		status.Status.Conditions = append(status.Status.Conditions, corev1.NamespaceCondition{Type: "Forged", Status: corev1.ConditionTrue})
		Expect(c.Status().Update(ctx, status.DeepCopy(), client.DryRunAll)).To(MatchError(nsOnly))
		// Without the kubernetes finalizer the namespace would be deleted
		// without its contents being.
		unfinalized := ns.DeepCopy()
		unfinalized.Spec.Finalizers = nil
		Expect(c.SubResource("finalize").Update(ctx, unfinalized.DeepCopy(), client.DryRunAll)).To(MatchError(nsOnly))
		Expect(controller(quotaController).SubResource("finalize").Update(ctx, unfinalized.DeepCopy(), client.DryRunAll)).
			To(MatchError(nsOnly))
		for _, name := range []string{"system:serviceaccount:kube-system:namespace-controller", "system:kube-controller-manager"} {
			Expect(controller(name).Status().Update(ctx, status.DeepCopy(), client.DryRunAll)).To(Succeed(), name)
			Expect(controller(name).SubResource("finalize").Update(ctx, unfinalized.DeepCopy(), client.DryRunAll)).To(Succeed(), name)
		}
		// Namespaces the operator does not manage are not its business.
		other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-own"}}
		Expect(c.Create(ctx, other)).To(Succeed())
		other.Spec.Finalizers = nil
		Expect(c.SubResource("finalize").Update(ctx, other, client.DryRunAll)).To(Succeed())
	})

	It("confines the operator's token to the namespaces it marks and the objects in them", func() {
		operatorSA := "system:serviceaccount:" + releaseNamespace + ":meshfed-service"
		operator := as(operatorSA, "system:serviceaccounts", "system:serviceaccounts:"+releaseNamespace)
		outOfScope := ContainSubstring("meshstack-operator may only change namespaces that carry its marks and objects in them")
		certManager := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cert-manager"}}
		Expect(c.Create(ctx, certManager)).To(Succeed())

		// A stolen operator token: RBAC lets it, the policy does not.
		Eventually(func() error {
			n := certManager.DeepCopy()
			n.Labels = map[string]string{"hijacked": "true"}
			return operator.Update(ctx, n, client.DryRunAll)
		}).Should(MatchError(outOfScope))
		Expect(operator.Delete(ctx, certManager.DeepCopy())).To(MatchError(outOfScope))
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: certManager.Name, Name: "backdoor"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}},
		}
		Expect(operator.Create(ctx, binding)).To(MatchError(outOfScope))
		Expect(operator.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unmarked"}})).
			To(MatchError(ContainSubstring("meshstack-operator may only create namespaces that carry its marks")))
		// Marking a namespace it does not own is refused as well: the old
		// namespace decides.
		marked := certManager.DeepCopy()
		marked.Labels = map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue}
		Expect(operator.Update(ctx, marked, client.DryRunAll)).To(MatchError(outOfScope))
		Expect(c.Get(ctx, client.ObjectKeyFromObject(certManager), certManager)).To(Succeed())
		Expect(certManager.DeletionTimestamp.IsZero()).To(BeTrue())

		// What it does itself passes: converge, release (Retain removes its
		// marks) and delete.
		retained := project("retained", "acme", "admin")
		retained.Spec.DeletionPolicy = meshv1.DeletionPolicyRetain
		deleted := project("deleted", "acme", "admin")
		for _, p := range []*meshv1.MeshProject{retained, deleted} {
			Expect(c.Create(ctx, p)).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(c.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
				cond := meta.FindStatusCondition(p.Status.Conditions, meshv1.ReadyCondition)
				g.Expect(cond).NotTo(BeNil())
				g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s: %s", cond.Reason, cond.Message)
			}, framework.Timeout).Should(Succeed())
			Expect(c.Delete(ctx, p)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(retained), retained))).To(BeTrue(), "released")
			var ns corev1.Namespace
			g.Expect(c.Get(ctx, client.ObjectKey{Name: retained.NamespaceName()}, &ns)).To(Succeed())
			g.Expect(ns.Labels).NotTo(HaveKey(meshv1.LabelManagedBy))
			g.Expect(ns.Annotations).NotTo(HaveKey(meshv1.AnnotationMeshProject))
			var rb rbacv1.RoleBinding
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: replicator.RoleBindingName("admin")}, &rb)).To(Succeed())
			g.Expect(rb.Annotations).NotTo(HaveKey(meshv1.AnnotationMeshProject))
		}, framework.Timeout).Should(Succeed())
		Eventually(func(g Gomega) {
			var ns corev1.Namespace
			err := c.Get(ctx, client.ObjectKey{Name: deleted.NamespaceName()}, &ns)
			g.Expect(apierrors.IsNotFound(err) || !ns.DeletionTimestamp.IsZero()).To(BeTrue(), "namespace %s not deleted", deleted.NamespaceName())
			g.Expect(apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(deleted), deleted))).To(BeTrue())
		}, framework.Timeout).Should(Succeed())
		// A released namespace is out of its scope from then on.
		released := &corev1.Namespace{}
		Expect(c.Get(ctx, client.ObjectKey{Name: retained.NamespaceName()}, released)).To(Succeed())
		Expect(operator.Delete(ctx, released)).To(MatchError(outOfScope))
	})
})
