package replicator_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

var _ = Describe("Admission of MeshProjects", func() {
	DescribeTable("rejects bad input with a message a person understands",
		func(mutate func(*meshv1.MeshProject), field, message string) {
			p := aProject().users("admin", "alice").build()
			mutate(p)
			expectInvalid(fw.Client.Create(ctx, p), field, message)
		},
		Entry("upper case customer identifier",
			func(p *meshv1.MeshProject) { p.Spec.CustomerIdentifier = "Acme" },
			"spec.customerIdentifier", "must be non-empty and contain only lowercase letters (a-z) and digits (0-9)"),
		Entry("dash in project identifier",
			func(p *meshv1.MeshProject) { p.Spec.ProjectIdentifier = "web-shop" },
			"spec.projectIdentifier", "must be non-empty and contain only lowercase letters (a-z) and digits (0-9)"),
		Entry("underscore in customer identifier",
			func(p *meshv1.MeshProject) { p.Spec.CustomerIdentifier = "acme_corp" },
			"spec.customerIdentifier", "must be non-empty and contain only lowercase letters (a-z) and digits (0-9)"),
		Entry("empty project identifier",
			func(p *meshv1.MeshProject) { p.Spec.ProjectIdentifier = "" },
			"spec.projectIdentifier", "must be non-empty"),
		Entry("combined name over 63 characters",
			func(p *meshv1.MeshProject) {
				p.Spec.CustomerIdentifier = meshv1.Identifier(strings.Repeat("c", 32))
				p.Spec.ProjectIdentifier = meshv1.Identifier(strings.Repeat("p", 31))
			},
			"spec", "the namespace name <customerIdentifier>-<projectIdentifier> must be at most 63 characters"),
		Entry("a role listed twice",
			func(p *meshv1.MeshProject) {
				p.Spec.RoleBindings = append(p.Spec.RoleBindings, meshv1.ProjectRoleBinding{Role: "admin", Users: []meshv1.SubjectName{"bob"}})
			},
			"spec.roleBindings[1]", "Duplicate value"),
		Entry("an empty user name",
			func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Users = []meshv1.SubjectName{""} },
			"spec.roleBindings[0].users[0]", "should be at least 1 chars long"),
		Entry("a user named system:masters",
			func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Users = []meshv1.SubjectName{"system:masters"} },
			"spec.roleBindings[0].users[0]", "must not start with 'system:'"),
		Entry("the group system:authenticated",
			func(p *meshv1.MeshProject) {
				p.Spec.RoleBindings[0].Groups = []meshv1.SubjectName{"system:authenticated"}
			},
			"spec.roleBindings[0].groups[0]", "must not start with 'system:'"),
		Entry("an empty group name",
			func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Groups = []meshv1.SubjectName{""} },
			"spec.roleBindings[0].groups[0]", "should be at least 1 chars long"),
		Entry("a user listed twice",
			func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Users = []meshv1.SubjectName{"bob", "bob"} },
			"spec.roleBindings[0].users[1]", "Duplicate value"),
		Entry("an unknown deletion policy",
			func(p *meshv1.MeshProject) { p.Spec.DeletionPolicy = "Orphan" },
			"spec.deletionPolicy", `supported values: "Delete", "Retain"`),
		Entry("a tag key that is no label name",
			func(p *meshv1.MeshProject) { p.Spec.Tags = map[string]meshv1.TagValue{"cost center": "a"} },
			"spec.tags", "tag keys must be valid label names"),
		Entry("a tag value that is no label value",
			func(p *meshv1.MeshProject) { p.Spec.Tags = map[string]meshv1.TagValue{"costcenter": "a b"} },
			"spec.tags", "tag values must be valid label values"),
		Entry("a role that is no DNS label",
			func(p *meshv1.MeshProject) { p.Spec.RoleBindings[0].Role = "Admin" },
			"spec.roleBindings[0].role", "should match"),
	)

	DescribeTable("keeps identifiers immutable",
		func(mutate func(*meshv1.MeshProject), field string) {
			p := aProject().users("admin", "alice").create()
			var err error
			// The operator adds its finalizer meanwhile: retry on conflicts.
			Eventually(func(g Gomega) {
				g.Expect(fw.Client.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
				mutate(p)
				err = fw.Client.Update(ctx, p)
				g.Expect(apierrors.IsConflict(err)).To(BeFalse())
			}).Should(Succeed())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
			Expect(err.Error()).To(ContainSubstring("is immutable: delete and recreate the MeshProject to change it"))
		},
		Entry("customer identifier", func(p *meshv1.MeshProject) { p.Spec.CustomerIdentifier += "x" }, "spec.customerIdentifier"),
		Entry("project identifier", func(p *meshv1.MeshProject) { p.Spec.ProjectIdentifier += "x" }, "spec.projectIdentifier"),
	)

	It("accepts a valid project at the 63 character limit and defaults the deletion policy", func() {
		p := aProject().users("admin", "alice").build()
		p.Name = "limit-" + string(p.Spec.CustomerIdentifier)
		p.Spec.ProjectIdentifier = meshv1.Identifier(strings.Repeat("p", 62-len(p.Spec.CustomerIdentifier)))
		Expect(fw.Client.Create(ctx, p)).To(Succeed())
		Expect(p.NamespaceName()).To(HaveLen(63))
		Expect(p.Spec.DeletionPolicy).To(Equal(meshv1.DeletionPolicyDelete))
		expectReady(p)
	})
})

var _ = Describe("Admission of MeshLandingZones", func() {
	DescribeTable("rejects bad input with a message a person understands",
		func(mutate func(*meshv1.MeshLandingZone), field, message string) {
			z := aZone().mapping("admin", "admin").podSecurity("baseline").build()
			mutate(z)
			expectInvalid(fw.Client.Create(ctx, z), field, message)
		},
		Entry("the operator's managed-by label",
			func(z *meshv1.MeshLandingZone) { z.Spec.NamespaceLabels["app.kubernetes.io/managed-by"] = "someone" },
			"spec.namespaceLabels", "must not set the operator's own labels"),
		Entry("a label under meshcloud.io/",
			func(z *meshv1.MeshLandingZone) { z.Spec.NamespaceLabels["meshcloud.io/customer"] = "evil" },
			"spec.namespaceLabels", "must not set the operator's own labels"),
		Entry("a label under a subdomain of meshcloud.io",
			func(z *meshv1.MeshLandingZone) { z.Spec.NamespaceLabels["tags.meshcloud.io/env"] = "prod" },
			"spec.namespaceLabels", "must not set the operator's own labels"),
		Entry("a label key that is no label key",
			func(z *meshv1.MeshLandingZone) { z.Spec.NamespaceLabels["team name"] = "a" },
			"spec.namespaceLabels", "namespaceLabels keys must be valid label keys"),
		Entry("a label value that is no label value",
			func(z *meshv1.MeshLandingZone) { z.Spec.NamespaceLabels["team"] = "a b" },
			"spec.namespaceLabels", "namespaceLabels values must be valid label values"),
		Entry("a role that is no DNS label",
			func(z *meshv1.MeshLandingZone) { z.Spec.RoleMappings[0].Role = "Admin" },
			"spec.roleMappings[0].role", "should match"),
		Entry("a role without ClusterRoles",
			func(z *meshv1.MeshLandingZone) { z.Spec.RoleMappings[0].ClusterRoles = nil },
			"spec.roleMappings[0].clusterRoles", "Required value"),
		Entry("a ClusterRole name with a slash",
			func(z *meshv1.MeshLandingZone) { z.Spec.RoleMappings[0].ClusterRoles = []meshv1.ClusterRoleName{"a/b"} },
			"spec.roleMappings[0].clusterRoles[0]", "must be a ClusterRole name"),
		Entry("too many ClusterRoles for a role",
			func(z *meshv1.MeshLandingZone) {
				for i := range 9 {
					z.Spec.RoleMappings[0].ClusterRoles = append(z.Spec.RoleMappings[0].ClusterRoles, meshv1.ClusterRoleName(fmt.Sprintf("r%d", i)))
				}
			},
			"spec.roleMappings[0].clusterRoles", "must have at most 8 items"),
		Entry("too many roles",
			func(z *meshv1.MeshLandingZone) {
				for i := range 32 {
					z.Spec.RoleMappings = append(z.Spec.RoleMappings,
						meshv1.LandingZoneRoleMapping{Role: fmt.Sprintf("r%d", i), ClusterRoles: []meshv1.ClusterRoleName{"view"}})
				}
			},
			"spec.roleMappings", "must have at most 32 items"),
		Entry("a role mapped twice",
			func(z *meshv1.MeshLandingZone) {
				z.Spec.RoleMappings = append(z.Spec.RoleMappings, z.Spec.RoleMappings[0])
			},
			"spec.roleMappings[1]", "Duplicate value"),
		Entry("too many network policies",
			func(z *meshv1.MeshLandingZone) {
				for i := range 17 {
					z.Spec.NetworkPolicies = append(z.Spec.NetworkPolicies, meshv1.LandingZoneNetworkPolicy{Name: fmt.Sprintf("p%d", i)})
				}
			},
			"spec.networkPolicies", "must have at most 16 items"),
		Entry("a network policy name that is no DNS label",
			func(z *meshv1.MeshLandingZone) {
				z.Spec.NetworkPolicies = []meshv1.LandingZoneNetworkPolicy{{Name: "Deny_All"}}
			},
			"spec.networkPolicies[0].name", "should match"),
		Entry("more than 8 LimitRange items",
			func(z *meshv1.MeshLandingZone) {
				z.Spec.LimitRange = &meshv1.LimitRangeSpec{}
				for range 9 {
					z.Spec.LimitRange.Limits = append(z.Spec.LimitRange.Limits, meshv1.LimitRangeItem{Type: "Container"})
				}
			},
			"spec.limitRange.limits", "must have at most 8 items"),
		Entry("more than 16 resources in a LimitRange map",
			func(z *meshv1.MeshLandingZone) {
				item := meshv1.LimitRangeItem{Type: "Container", Max: resources()}
				for i := range 17 {
					item.Max[corev1.ResourceName(fmt.Sprintf("example.com/r%d", i))] = resource.MustParse("1")
				}
				z.Spec.LimitRange = &meshv1.LimitRangeSpec{Limits: []meshv1.LimitRangeItem{item}}
			},
			"spec.limitRange.limits[0].max", "must have at most 16 items"),
		Entry("more than 64 resources in resourceQuota.hard",
			func(z *meshv1.MeshLandingZone) {
				z.Spec.ResourceQuota = &meshv1.ResourceQuotaSpec{Hard: resources()}
				for i := range 65 {
					z.Spec.ResourceQuota.Hard[corev1.ResourceName(fmt.Sprintf("example.com/r%d", i))] = resource.MustParse("1")
				}
			},
			"spec.resourceQuota.hard", "must have at most 64 items"),
		Entry("a resourceQuota.hard key that is no resource name",
			func(z *meshv1.MeshLandingZone) {
				z.Spec.ResourceQuota = &meshv1.ResourceQuotaSpec{Hard: resources("requests cpu", "1")}
			},
			"spec.resourceQuota.hard", "resourceQuota.hard keys must be resource names"),
		Entry("a maxQuota key that is no resource name",
			func(z *meshv1.MeshLandingZone) { z.Spec.MaxQuota = resources("requests cpu", "1") },
			"spec.maxQuota", "maxQuota keys must be resource names"),
	)

	It("accepts the issue's example, Pod Security labels included", func() {
		z := aZone().mapping("admin", "admin").mapping("reader", "view", "my-custom-reader").
			podSecurity("baseline").
			hard("requests.cpu", "4", "limits.memory", "16Gi", "pods", "50").maxQuota("requests.cpu", "16").
			containerDefaults("500m", "512Mi", "100m", "128Mi").policy("default-deny-ingress", denyIngress).build()
		Expect(fw.Client.Create(ctx, z)).To(Succeed())
	})
})

var _ = Describe("Admission of a MeshProject's landing zone and quota", func() {
	DescribeTable("rejects bad input with a message a person understands",
		func(mutate func(*meshv1.MeshProject), field, message string) {
			p := aProject().users("admin", "alice").build()
			mutate(p)
			expectInvalid(fw.Client.Create(ctx, p), field, message)
		},
		Entry("a quota key that is no resource name",
			func(p *meshv1.MeshProject) { p.Spec.Quota = resources("requests cpu", "1") },
			"spec.quota", "quota keys must be resource names"),
		Entry("a landing zone that is no object name",
			func(p *meshv1.MeshProject) { p.Spec.LandingZone = "Standard Zone" },
			"spec.landingZone", "must be the name of a MeshLandingZone"),
	)
})

// expectInvalid asserts an Invalid error about field with message.
func expectInvalid(err error, field, message string) {
	GinkgoHelper()
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
	Expect(err.Error()).To(ContainSubstring(field))
	Expect(err.Error()).To(ContainSubstring(message))
}
