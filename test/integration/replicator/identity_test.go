package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/internal/permissions"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// replaceOperator stops the suite's operator and runs one with opts under
// sa instead, until the spec ends; then the suite's own runs again.
func replaceOperator(sa framework.ServiceAccount, opts operator.Options) *framework.RunningManager {
	GinkgoHelper()
	Expect(running.Stop()).To(Succeed())
	replacement, err := framework.StartManager(sa.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	running = replacement
	DeferCleanup(func() {
		Expect(replacement.Stop()).To(Succeed())
		restored, err := framework.StartManager(identity.Config, replicatorOptions())
		Expect(err).NotTo(HaveOccurred())
		running = restored
	})
	return replacement
}

// Serial: these specs replace the suite's operator.
var _ = Describe("The operator under the seed's roles alone", Serial, func() {
	It("serves projects without a zone, asks for no landing-zone kind and reports LandingZonesNotPermitted for the others", func() {
		sa, err := fw.CreateServiceAccount(ctx, operatorNamespace, "meshfed-service-seed-only", seedRoles...)
		Expect(err).NotTo(HaveOccurred())
		permitted, missing, err := permissions.LandingZonesPermitted(ctx, sa.Config)
		Expect(err).NotTo(HaveOccurred())
		Expect(permitted).To(BeFalse())
		Expect(missing).To(ContainElements("create /resourcequotas", "watch networking.k8s.io/networkpolicies",
			"list meshcloud.io/meshlandingzones"))
		Expect(permissions.LandingZonesPermitted(ctx, identity.Config)).To(BeTrue())

		seedOnly := replaceOperator(sa, replicatorOptions())
		z := aZone().hard("pods", "50").create()
		plain := aProject().users("admin", "alice").create()
		zoned := aProject().zone(z.Name).users("admin", "alice").create()
		expectReady(plain)
		message := expectNotReady(zoned, meshv1.ReasonLandingZonesNotPermitted)
		Expect(message).To(ContainSubstring("meshstack-operator-landing-zones"))
		Eventually(func(g Gomega) {
			g.Expect(getRoleBinding(g, zoned, "admin").Subjects).To(ConsistOf(user("mesh:alice")))
			g.Expect(canCreateDeployments(g, zoned.NamespaceName(), "mesh:alice")).To(BeTrue())
		}).Should(Succeed())
		var quotas corev1.ResourceQuotaList
		Expect(fw.Client.List(ctx, &quotas, client.InNamespace(zoned.NamespaceName()))).To(Succeed())
		Expect(quotas.Items).To(BeEmpty())
		// No informer, no request: the seed's roles would refuse them.
		Expect(seedOnly.Requests("/resourcequotas", "/limitranges", "/networkpolicies", "/meshlandingzones")).To(BeZero())
	})
})

var _ = Describe("--default-landing-zone", Serial, func() {
	It("puts projects that name no zone into the default zone", func() {
		z := aZone().hard("pods", "7").create()
		var p *meshv1.MeshProject
		// Registered first, so it runs after the suite's operator is back
		// (cleanups run last in, first out): without a default, a project
		// that names no zone may not leave the one it is in, and keeps
		// its quota.
		DeferCleanup(func() {
			expectNotReady(p, meshv1.ReasonLandingZoneRequired)
			Consistently(func(g Gomega) {
				g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "7"}))
			}, "1s").Should(Succeed())
		})
		opts := replicatorOptions()
		opts.DefaultLandingZone = z.Name
		replaceOperator(identity, opts)

		other := aZone().hard("pods", "9").create()
		p = aProject().users("admin", "alice").create()
		named := aProject().zone(other.Name).users("admin", "alice").create()
		expectReady(p)
		expectReady(named)
		Eventually(func(g Gomega) {
			g.Expect(hardOf(getQuota(g, p))).To(Equal(map[string]string{"pods": "7"}))
			g.Expect(hardOf(getQuota(g, named))).To(Equal(map[string]string{"pods": "9"}))
			current := &meshv1.MeshProject{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), current)).To(Succeed())
			g.Expect(current.Status.LandingZone).To(Equal(z.Name))
			zone := &meshv1.MeshLandingZone{}
			g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(z), zone)).To(Succeed())
			g.Expect(zone.Status.Projects).To(BeNumerically(">=", 1))
		}).Should(Succeed())
	})
})
