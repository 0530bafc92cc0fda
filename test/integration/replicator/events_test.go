package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcloud/meshstack-operator/internal/eventrecorder"
)

var _ = Describe("The events API the operator writes to", func() {
	It("is events.k8s.io when the identity may use it", func() {
		Expect(eventrecorder.APIGroup(ctx, identity.Config)).To(Equal("events.k8s.io"))
	})

	It("is core/v1 when the identity's role grants only that one", func() {
		Expect(fw.Client.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "test-core-events-only"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}}},
		})).To(Succeed())
		sa, err := fw.CreateServiceAccount(ctx, operatorNamespace, "core-events-only")
		Expect(err).NotTo(HaveOccurred())
		Expect(fw.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test-core-events-only"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "test-core-events-only"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: "core-events-only"}},
		})).To(Succeed())
		Eventually(func() (string, error) { return eventrecorder.APIGroup(ctx, sa.Config) }).Should(Equal(""))
	})
})
