package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
)

var _ = Describe("Replicating a MeshProject", func() {
	It("creates the namespace with its labels and one RoleBinding per role", func() {
		p := aProject().
			users("admin", "alice").
			users("view", "bob", "carol").
			groups("edit", "devs").
			tag("costcenter", "cc-42").
			create()
		expectReady(p)
		expectConditions(p, allStepsTrue)

		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue))
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelCustomer, string(p.Spec.CustomerIdentifier)))
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelProject, string(p.Spec.ProjectIdentifier)))
			g.Expect(ns.Labels).To(HaveKeyWithValue("tags.meshcloud.io/costcenter", "cc-42"))
			g.Expect(ns.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))

			admin := getRoleBinding(g, p, "admin")
			g.Expect(admin.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"}))
			g.Expect(admin.Subjects).To(ConsistOf(user("mesh:alice")))
			g.Expect(getRoleBinding(g, p, "view").Subjects).To(ConsistOf(user("mesh:bob"), user("mesh:carol")))
			edit := getRoleBinding(g, p, "edit")
			g.Expect(edit.RoleRef.Name).To(Equal("edit"))
			g.Expect(edit.Subjects).To(ConsistOf(group("devs")))

			g.Expect(eventNotes(g, p, "AccessGranted")).To(ContainElement(SatisfyAll(
				ContainSubstring(`User "mesh:alice" gained role admin (ClusterRole admin)`),
				ContainSubstring(`Group "devs" gained role edit (ClusterRole edit)`),
				HaveSuffix(" in namespace "+p.NamespaceName()))))
		}).Should(Succeed())
	})

	It("gives access that the API server enforces, and takes it away again", func() {
		mine := aProject().users("admin", "alice").groups("edit", "team-a").create()
		other := aProject().users("admin", "zoe").create()
		expectReady(mine)
		expectReady(other)

		Eventually(func(g Gomega) {
			g.Expect(canCreateDeployments(g, mine.NamespaceName(), "mesh:alice")).To(BeTrue())
			g.Expect(canCreateDeployments(g, other.NamespaceName(), "mesh:alice")).To(BeFalse())
			g.Expect(canCreateDeployments(g, mine.NamespaceName(), "mesh:somebody", "team-a")).To(BeTrue())
			g.Expect(canCreateDeployments(g, other.NamespaceName(), "mesh:somebody", "team-a")).To(BeFalse())
			// Without the prefix the name is not an OIDC user of ours.
			g.Expect(canCreateDeployments(g, mine.NamespaceName(), "alice")).To(BeFalse())
		}).Should(Succeed())

		update(mine, func(p *meshv1.MeshProject) {
			p.Spec.RoleBindings[0].Users = []meshv1.SubjectName{"dave"}
		})
		expectReady(mine)
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, mine, "admin").Subjects).To(ConsistOf(user("mesh:dave")))
			g.Expect(canCreateDeployments(g, mine.NamespaceName(), "mesh:alice")).To(BeFalse())
			g.Expect(canCreateDeployments(g, mine.NamespaceName(), "mesh:dave")).To(BeTrue())
			g.Expect(eventNotes(g, mine, "AccessRevoked")).To(ContainElement(
				`User "mesh:alice" lost role admin (ClusterRole admin) in namespace ` + mine.NamespaceName()))
		}).Should(Succeed())
	})

	It("deletes the RoleBinding of a role removed from the spec", func() {
		p := aProject().users("admin", "alice").users("view", "bob").create()
		expectReady(p)
		update(p, func(p *meshv1.MeshProject) {
			p.Spec.RoleBindings = p.Spec.RoleBindings[:1]
		})
		expectReady(p)
		Eventually(func(g Gomega) {
			key := client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName("view")}
			err := fw.Client.Get(ctx, key, &rbacv1.RoleBinding{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "view RoleBinding still there: %v", err)
			g.Expect(canCreateDeployments(g, p.NamespaceName(), "mesh:alice")).To(BeTrue())
			g.Expect(eventNotes(g, p, "AccessRevoked")).To(ContainElement(
				`User "mesh:bob" lost role view (ClusterRole view) in namespace ` + p.NamespaceName()))
		}).Should(Succeed())
	})

	It("restores a managed RoleBinding that was deleted or edited by hand", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)

		var rb *rbacv1.RoleBinding
		Eventually(func(g Gomega) { rb = getRoleBinding(g, p, "admin") }).Should(Succeed())
		Expect(fw.Client.Delete(ctx, rb)).To(Succeed())
		Eventually(func(g Gomega) {
			restored := getRoleBinding(g, p, "admin")
			g.Expect(restored.UID).NotTo(Equal(rb.UID))
			g.Expect(restored.Subjects).To(ConsistOf(user("mesh:alice")))
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			edited := getRoleBinding(g, p, "admin")
			edited.Subjects = append(edited.Subjects, user("mesh:mallory"))
			g.Expect(fw.Client.Update(ctx, edited)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
		}).Should(Succeed())
	})

	It("reports a namespace deleted by hand as terminating, to be created again once gone", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		Expect(fw.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.NamespaceName()}})).To(Succeed())
		message := expectNotReady(p, meshv1.ReasonNamespaceTerminating)
		Expect(message).To(ContainSubstring("namespace " + p.NamespaceName() + " is being deleted"))
		old := getNamespace(Default, p.NamespaceName())
		oldBinding := getRoleBinding(Default, p, "admin")

		By("finishing the deletion as the namespace controller would, which envtest does not run")
		// Objects left inside would come back with a namespace of the same
		// name, so they go first, then the kubernetes finalizer.
		Expect(fw.Client.DeleteAllOf(ctx, &rbacv1.RoleBinding{}, client.InNamespace(p.NamespaceName()))).To(Succeed())
		cs, err := kubernetes.NewForConfig(fw.Config)
		Expect(err).NotTo(HaveOccurred())
		old.Spec.Finalizers = nil
		_, err = cs.CoreV1().Namespaces().Finalize(ctx, old, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("creating the namespace again, with its labels and RoleBindings, once the old one is gone")
		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			g.Expect(ns.UID).NotTo(Equal(old.UID), "still the deleted namespace")
			g.Expect(ns.DeletionTimestamp).To(BeNil())
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelCustomer, string(p.Spec.CustomerIdentifier)))
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue))
			rb := getRoleBinding(g, p, "admin")
			g.Expect(rb.UID).NotTo(Equal(oldBinding.UID))
			g.Expect(rb.Subjects).To(ConsistOf(user("mesh:alice")))
		}).Should(Succeed())
		expectReady(p)
	})

	It("restores its namespace labels, keeps labels of others and drops removed tags", func() {
		p := aProject().users("admin", "alice").tag("env", "dev").tag("team", "a").create()
		expectReady(p)

		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			ns.Labels[meshv1.LabelCustomer] = "someoneelse"
			delete(ns.Labels, meshv1.LabelManagedBy)
			ns.Labels["example.com/owner"] = "platform"
			g.Expect(fw.Client.Update(ctx, ns)).To(Succeed())
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelCustomer, string(p.Spec.CustomerIdentifier)))
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelManagedBy, meshv1.ManagedByValue))
			g.Expect(ns.Labels).To(HaveKeyWithValue("example.com/owner", "platform"))
		}).Should(Succeed())

		update(p, func(p *meshv1.MeshProject) { delete(p.Spec.Tags, "team") })
		expectReady(p)
		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			g.Expect(ns.Labels).NotTo(HaveKey("tags.meshcloud.io/team"))
			g.Expect(ns.Labels).To(HaveKeyWithValue("tags.meshcloud.io/env", "dev"))
		}).Should(Succeed())
	})

	It("keeps kubectl's last-applied-configuration on the namespace and RoleBindings it restores", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		const applied = `{"kept":true}`
		ns := getNamespace(Default, p.NamespaceName())
		updateObject(ns, func(ns *corev1.Namespace) {
			ns.Annotations[corev1.LastAppliedConfigAnnotation] = applied
			delete(ns.Labels, meshv1.LabelCustomer)
		})
		rb := getRoleBinding(Default, p, "admin")
		updateObject(rb, func(rb *rbacv1.RoleBinding) {
			rb.Annotations[corev1.LastAppliedConfigAnnotation] = applied
			rb.Subjects = []rbacv1.Subject{user("mesh:mallory")}
		})
		Eventually(func(g Gomega) {
			ns := getNamespace(g, p.NamespaceName())
			g.Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelCustomer, string(p.Spec.CustomerIdentifier)))
			g.Expect(ns.Annotations).To(HaveKeyWithValue(corev1.LastAppliedConfigAnnotation, applied))
			rb := getRoleBinding(g, p, "admin")
			g.Expect(rb.Subjects).To(ConsistOf(user("mesh:alice")))
			g.Expect(rb.Annotations).To(HaveKeyWithValue(corev1.LastAppliedConfigAnnotation, applied))
		}).Should(Succeed())
	})

	It("never touches RoleBindings it did not create", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		foreign := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "team-extra", Namespace: p.NamespaceName()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{user("mesh:auditor")},
		}
		Expect(fw.Client.Create(ctx, foreign)).To(Succeed())

		update(p, func(p *meshv1.MeshProject) { p.Spec.RoleBindings = nil })
		expectReady(p)
		Eventually(func(g Gomega) {
			key := client.ObjectKey{Namespace: p.NamespaceName(), Name: replicator.RoleBindingName("admin")}
			err := fw.Client.Get(ctx, key, &rbacv1.RoleBinding{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())
		after := &rbacv1.RoleBinding{}
		Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(foreign), after)).To(Succeed())
		Expect(after.ResourceVersion).To(Equal(foreign.ResourceVersion))
	})

	It("reports a role that is not mapped, and still converges the other roles", func() {
		p := aProject().users("admin", "alice").users("owner", "bob").create()
		message := expectNotReady(p, meshv1.ReasonUnknownRole)
		Expect(message).To(ContainSubstring(`role "owner" is not mapped`))
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, p, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
			g.Expect(eventNotes(g, p, meshv1.ReasonUnknownRole)).NotTo(BeEmpty())
		}).Should(Succeed())

		By("counting it in meshstack_meshprojects by Ready status and reason, from the cache")
		Eventually(func(g Gomega) {
			g.Expect(projectsGauge(g, "False", meshv1.ReasonUnknownRole)).To(BeNumerically(">=", 1))
		}).Should(Succeed())
		unknownBefore := projectsGauge(Default, "False", meshv1.ReasonUnknownRole)
		readyBefore := projectsGauge(Default, "True", meshv1.ReasonReconciled)

		update(p, func(p *meshv1.MeshProject) { p.Spec.RoleBindings = p.Spec.RoleBindings[:1] })
		expectReady(p)
		Eventually(func(g Gomega) {
			g.Expect(projectsGauge(g, "False", meshv1.ReasonUnknownRole)).To(BeNumerically("<=", unknownBefore-1))
			g.Expect(projectsGauge(g, "True", meshv1.ReasonReconciled)).To(BeNumerically(">=", readyBefore+1))
		}).Should(Succeed())
	})

	It("waits for a missing ClusterRole and converges as soon as it is created", func() {
		p := aProject().users("admin", "alice").users("auditor", "erin").create()
		message := expectNotReady(p, meshv1.ReasonClusterRoleNotFound)
		Expect(message).To(ContainSubstring(`ClusterRole "` + customClusterRole + `"`))
		Eventually(func(g Gomega) { getRoleBinding(g, p, "admin") }).Should(Succeed())

		Expect(fw.Client.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: customClusterRole},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
		})).To(Succeed())
		expectReady(p)
		Eventually(func(g Gomega) {
			rb := getRoleBinding(g, p, "auditor")
			g.Expect(rb.RoleRef.Name).To(Equal(customClusterRole))
			g.Expect(rb.Subjects).To(ConsistOf(user("mesh:erin")))
		}).Should(Succeed())
	})
})

var _ = Describe("Objects the operator does not own", func() {
	It("does not adopt, change or delete a namespace that already exists", func() {
		b := aProject().users("admin", "alice")
		p := b.build()
		existing := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: p.NamespaceName(), Labels: map[string]string{"owner": "someone"},
		}}
		Expect(fw.Client.Create(ctx, existing)).To(Succeed())
		p = b.create()

		message := expectNotReady(p, meshv1.ReasonNamespaceConflict)
		Expect(message).To(ContainSubstring("was not created by this operator"))
		expectConditions(p, map[string]stepState{
			meshv1.LandingZoneReadyCondition:  {metav1.ConditionTrue, meshv1.ReasonLandingZoneResolved},
			meshv1.NamespaceReadyCondition:    {metav1.ConditionFalse, meshv1.ReasonNamespaceConflict},
			meshv1.RoleBindingsReadyCondition: {metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace},
			meshv1.BaselineReadyCondition:     {metav1.ConditionUnknown, meshv1.ReasonWaitingForNamespace},
			meshv1.ReadyCondition:             {metav1.ConditionFalse, meshv1.ReasonNamespaceConflict},
		})
		ns := &corev1.Namespace{}
		Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(existing), ns)).To(Succeed())
		Expect(ns.ResourceVersion).To(Equal(existing.ResourceVersion))
		var bindings rbacv1.RoleBindingList
		Expect(fw.Client.List(ctx, &bindings, client.InNamespace(ns.Name))).To(Succeed())
		Expect(bindings.Items).To(BeEmpty())

		Expect(fw.Client.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			err := fw.Client.Get(ctx, client.ObjectKeyFromObject(p), &meshv1.MeshProject{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())
		Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(existing), ns)).To(Succeed())
		Expect(ns.DeletionTimestamp).To(BeNil())
		Expect(ns.ResourceVersion).To(Equal(existing.ResourceVersion))
	})

	It("replaces a RoleBinding with its name in the project's namespace that it did not create, finalizer and all", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		foreign := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: replicator.RoleBindingName("view"), Namespace: p.NamespaceName(),
				Finalizers: []string{"example.com/keep"}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{user("mesh:outsider")},
		}
		Expect(fw.Client.Create(ctx, foreign)).To(Succeed())
		update(p, func(p *meshv1.MeshProject) {
			p.Spec.RoleBindings = append(p.Spec.RoleBindings, meshv1.ProjectRoleBinding{Role: "view", Users: []meshv1.SubjectName{"bob"}})
		})
		expectReady(p)
		Eventually(func(g Gomega) {
			rb := getRoleBinding(g, p, "view")
			g.Expect(rb.UID).NotTo(Equal(foreign.UID), "the foreign binding is still there")
			g.Expect(rb.Subjects).To(ConsistOf(user("mesh:bob")))
			g.Expect(rb.Finalizers).To(BeEmpty())
			g.Expect(rb.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProject, p.Name))
		}).Should(Succeed())
		Expect(getRoleBinding(Default, p, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
		Eventually(func(g Gomega) {
			g.Expect(eventNotes(g, p, meshv1.ReasonForeignObjectReplaced)).To(ContainElement(
				ContainSubstring("Replaced RoleBinding " + p.NamespaceName() + "/" + replicator.RoleBindingName("view"))))
		}).Should(Succeed())
	})

	It("does not take over the namespace of another MeshProject with the same identifiers", func() {
		first := aProject().users("admin", "alice").create()
		expectReady(first)
		second := aProject().named(first.Name+"-copy").
			identifiers(string(first.Spec.CustomerIdentifier), string(first.Spec.ProjectIdentifier)).
			users("admin", "mallory").create()
		message := expectNotReady(second, meshv1.ReasonNamespaceConflict)
		Expect(message).To(ContainSubstring("belongs to MeshProject " + first.Name))
		Consistently(func(g Gomega) {
			g.Expect(getRoleBinding(g, first, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
		}, "1s").Should(Succeed())

		Expect(fw.Client.Delete(ctx, second)).To(Succeed())
		Eventually(func(g Gomega) {
			err := fw.Client.Get(ctx, client.ObjectKeyFromObject(second), &meshv1.MeshProject{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())
		Expect(getNamespace(Default, first.NamespaceName()).DeletionTimestamp).To(BeNil())
	})
})

var _ = Describe("Deleting a MeshProject", func() {
	It("deletes the namespace when the policy is Delete", func() {
		p := aProject().users("admin", "alice").create()
		Expect(p.Spec.DeletionPolicy).To(Equal(meshv1.DeletionPolicyDelete), "the default policy")
		expectReady(p)
		Expect(fw.Client.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			err := fw.Client.Get(ctx, client.ObjectKeyFromObject(p), &meshv1.MeshProject{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
			// envtest runs no namespace controller: a deleted namespace stays
			// Terminating, so the deletion timestamp is the proof.
			g.Expect(getNamespace(g, p.NamespaceName()).DeletionTimestamp).NotTo(BeNil())
		}).Should(Succeed())
	})

	It("leaves the namespace and its RoleBindings in place, unmanaged, when the policy is Retain", func() {
		p := aProject().users("admin", "alice").policy(meshv1.DeletionPolicyRetain).create()
		expectReady(p)
		Expect(fw.Client.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) {
			err := fw.Client.Get(ctx, client.ObjectKeyFromObject(p), &meshv1.MeshProject{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		}).Should(Succeed())

		ns := getNamespace(Default, p.NamespaceName())
		Expect(ns.DeletionTimestamp).To(BeNil())
		Expect(ns.Labels).NotTo(HaveKey(meshv1.LabelManagedBy))
		Expect(ns.Annotations).NotTo(HaveKey(meshv1.AnnotationMeshProject))
		rb := getRoleBinding(Default, p, "admin")
		Expect(rb.Subjects).To(ConsistOf(user("mesh:alice")))
		Expect(rb.Labels).NotTo(HaveKey(meshv1.LabelManagedBy))
		Expect(canCreateDeployments(Default, p.NamespaceName(), "mesh:alice")).To(BeTrue())

		// A project created again under the same name does not adopt it.
		again := aProject().named(p.Name).identifiers(string(p.Spec.CustomerIdentifier), string(p.Spec.ProjectIdentifier)).create()
		expectNotReady(again, meshv1.ReasonNamespaceConflict)
	})
})
