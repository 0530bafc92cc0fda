package replicator_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Hostile input: what a namespace creator, a tenant admin or a careless
// MeshProject author can do, and what the operator makes of it. The
// admission policies that also stop most of it are not installed in this
// suite: these specs show the operator's own defences.
var _ = Describe("Hostile input", func() {
	It("never adopts a namespace it did not create, whatever marks it carries, nor deletes it with the project", func() {
		p := aProject().users("admin", "alice").build()
		planted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.NamespaceName(),
			Labels:      map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: p.Name}}}
		Expect(fw.Client.Create(ctx, planted)).To(Succeed())
		plantedBinding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: replicator.RoleBindingName("admin"), Namespace: planted.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{user("mesh:mallory")},
		}
		Expect(fw.Client.Create(ctx, plantedBinding)).To(Succeed())

		Expect(fw.Client.Create(ctx, p)).To(Succeed())
		message := expectNotReady(p, meshv1.ReasonNamespaceConflict)
		Expect(message).To(ContainSubstring("was not created by this operator"))
		Consistently(func(g Gomega) {
			ns := getNamespace(g, planted.Name)
			g.Expect(ns.ResourceVersion).To(Equal(planted.ResourceVersion), "the planted namespace was changed")
			rb := &rbacv1.RoleBinding{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(plantedBinding), rb)).To(Succeed())
			g.Expect(rb.ResourceVersion).To(Equal(plantedBinding.ResourceVersion))
			g.Expect(rb.Subjects).To(ConsistOf(user("mesh:mallory")), "the project's users were bound in a namespace it does not own")
		}, "2s").Should(Succeed())

		// Deleting the project (deletionPolicy Delete) leaves it alone.
		Expect(fw.Client.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) { expectGone(g, &meshv1.MeshProject{ObjectMeta: metav1.ObjectMeta{Name: p.Name}}) }).Should(Succeed())
		ns := getNamespace(Default, planted.Name)
		Expect(ns.DeletionTimestamp).To(BeNil(), "the operator deleted a namespace it did not create")
	})

	It("records the UID of the namespace it created, and takes a namespace re-created by someone else for a conflict", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		current := &meshv1.MeshProject{}
		Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), current)).To(Succeed())
		ns := getNamespace(Default, p.NamespaceName())
		Expect(current.Status.NamespaceUID).To(Equal(ns.UID))
		Expect(ns.Annotations).To(HaveKeyWithValue(meshv1.AnnotationMeshProjectUID, string(current.UID)))
	})

	It("keeps converging every other project when one holds a stored quantity that does not parse", func() {
		alice := aProject().users("admin", "alice").create()
		expectReady(alice)

		bad := aProject().users("admin", "bob").build()
		withoutQuantityValidation(func(g Gomega) {
			g.Expect(fw.Client.Create(ctx, &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": meshv1.GroupVersion.String(), "kind": "MeshProject",
				"metadata": map[string]any{"name": bad.Name},
				"spec": map[string]any{
					"customerIdentifier": string(bad.Spec.CustomerIdentifier), "projectIdentifier": string(bad.Spec.ProjectIdentifier),
					"roleBindings": []any{map[string]any{"role": "admin", "users": []any{"bob"}}},
					"quota":        map[string]any{"requests.cpu": "1e1.5", "pods": "10"},
				},
			}})).To(Succeed())
		})
		DeferCleanup(func() { Expect(client.IgnoreNotFound(fw.Client.Delete(ctx, bad))).To(Succeed()) })

		message := expectNotReady(bad, meshv1.ReasonInvalidQuantity)
		Expect(message).To(ContainSubstring(`spec.quota[requests.cpu]: "1e1.5"`))
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, bad, "admin").Subjects).To(ConsistOf(user("mesh:bob")))
		}).Should(Succeed())

		// Others converge, new and old, and lose access as their spec says.
		later := aProject().users("admin", "carol").create()
		expectReady(later)
		update(alice, func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Users = []meshv1.SubjectName{"dave"} })
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, alice, "admin").Subjects).To(ConsistOf(user("mesh:dave")))
		}).Should(Succeed())
		expectReady(alice)
	})

	It("keeps a namespace under its zone's quota when the merged one is refused; a project raises only what the zone bounds", func() {
		z := aZone().hard("pods", "10", "requests.cpu", "4").maxQuota("requests.cpu", "8").create()
		// 500m pods is lower than the zone's 10, but no ResourceQuota may have it.
		p := aProject().zone(z.Name).users("admin", "alice").quota("pods", "500m").create()
		message := expectNotReady(p, meshv1.ReasonResourceQuotaInvalid)
		Expect(message).To(ContainSubstring("the landing zone's own quota applies instead"))
		Eventually(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "10", "requests.cpu": "4"}))
		}).Should(Succeed())

		// pods has no maximum: it may be lowered and not raised.
		update(p, func(p *meshv1.MeshProject) { p.Spec.Quota = resources("pods", "20") })
		Expect(expectNotReady(p, meshv1.ReasonQuotaAboveMaximum)).
			To(ContainSubstring("pods 20 is above the zone's 10, and the zone sets no maximum for it"))
		update(p, func(p *meshv1.MeshProject) {
			p.Spec.Quota = resources("pods", "5", "requests.cpu", "8", "services", "3")
		})
		expectReady(p)
		Eventually(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "5", "requests.cpu": "8", "services": "3"}))
		}).Should(Succeed())
	})

	It("converges about the biggest MeshProject etcd stores: 32 roles of 150 users with 250-character names", func() {
		zone := aZone()
		for i := range 32 {
			zone = zone.mapping(fmt.Sprintf("role%02d", i), "view")
		}
		z := zone.create()
		b := aProject().zone(z.Name)
		for i := range 32 {
			for j := range 150 {
				b = b.users(fmt.Sprintf("role%02d", i), fmt.Sprintf("%03d-%s", j, strings.Repeat("u", 246)))
			}
		}
		p := b.create()
		DeferCleanup(func() { Expect(client.IgnoreNotFound(fw.Client.Delete(ctx, p))).To(Succeed()) })
		expectReadyWithin(p, 2*framework.Timeout)
		Eventually(func(g Gomega) {
			var bindings rbacv1.RoleBindingList
			g.Expect(fw.Client.List(ctx, &bindings, client.InNamespace(p.NamespaceName()))).To(Succeed())
			g.Expect(bindings.Items).To(HaveLen(32))
			for _, rb := range bindings.Items {
				g.Expect(rb.Subjects).To(HaveLen(150), rb.Name)
			}
		}).Should(Succeed())
	})

	It("strips finalizers and ownerReferences that others add to its RoleBindings", func() {
		p := aProject().users("admin", "alice").create()
		expectReady(p)
		rb := getRoleBinding(Default, p, "admin")
		updateObject(rb, func(rb *rbacv1.RoleBinding) {
			rb.Finalizers = []string{"example.com/keep"}
			rb.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "elsewhere", UID: "0000"}}
		})
		Eventually(func(g Gomega) {
			after := getRoleBinding(g, p, "admin")
			g.Expect(after.Finalizers).To(BeEmpty())
			g.Expect(after.OwnerReferences).To(BeEmpty())
		}).Should(Succeed())
	})
})

// withoutQuantityValidation runs create with the MeshProject CRD's CEL
// rules on spec.quota removed, as a CRD of the previous release had them,
// and restores the CRD after: objects stored then are still in etcd after
// an upgrade.
func withoutQuantityValidation(create func(g Gomega)) {
	GinkgoHelper()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	Expect(fw.Client.Get(ctx, client.ObjectKey{Name: "meshprojects.meshcloud.io"}, crd)).To(Succeed())
	original := crd.DeepCopy()
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		quota, found, _ := unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "quota")
		Expect(found).To(BeTrue())
		dropValidations(quota)
		Expect(unstructured.SetNestedMap(v.(map[string]any), quota,
			"schema", "openAPIV3Schema", "properties", "spec", "properties", "quota")).To(Succeed())
	}
	Expect(unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions")).To(Succeed())
	Expect(fw.Client.Update(ctx, crd)).To(Succeed())
	defer func() {
		Eventually(func(g Gomega) {
			current := original.DeepCopy()
			g.Expect(fw.Client.Get(ctx, client.ObjectKey{Name: "meshprojects.meshcloud.io"}, current)).To(Succeed())
			original.SetResourceVersion(current.GetResourceVersion())
			g.Expect(fw.Client.Update(ctx, original)).To(Succeed())
		}).Should(Succeed())
	}()
	// The API server takes the new schema a moment after the update.
	Eventually(create).Should(Succeed())
}

// dropValidations removes every CEL rule and pattern from a schema.
func dropValidations(schema map[string]any) {
	delete(schema, "x-kubernetes-validations")
	for _, v := range schema {
		if sub, ok := v.(map[string]any); ok {
			dropValidations(sub)
		}
	}
}
