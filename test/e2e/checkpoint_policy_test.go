package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The chart installed into an API server that enforces
// ValidatingAdmissionPolicies: only the metering ServiceAccount and the
// break-glass groups may create, update and delete the checkpoint's
// ConfigMaps, and other ConfigMaps are not affected. The specs share the
// control plane and run in order; a failing one does not stop the others.
var _ = Describe("The metering checkpoint's admission policy", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()
	const message = "is the metering checkpoint (usage counted and not yet delivered); only the metering ServiceAccount meshfed-metering"
	first := checkpoint.DefaultName
	last := checkpoint.DefaultName + "-7" // the last part of the layout before generations
	configMap := func(namespace, name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: map[string]string{"parts": "1"}}
	}
	var (
		dir    string
		admin  client.Client // cluster-admin, not in a break-glass group
		meter  client.Client
		oncall client.Client
	)
	BeforeAll(func() {
		dir = GinkgoT().TempDir()
		fw, adminKubeconfig := startControlPlane(dir)
		admin = fw.Client
		_, err := framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
			"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
			"--set", "admissionPolicies.breakGlassGroups={platform-admins}", "--set", "replicator.enabled=false")
		Expect(err).NotTo(HaveOccurred())
		meter = impersonating(fw, "system:serviceaccount:"+releaseNamespace+":meshfed-metering",
			"system:serviceaccounts", "system:serviceaccounts:"+releaseNamespace)
		oncall = breakGlassMember(fw)

		// The policy acts a moment after it is installed: wait with a dry run.
		Eventually(func() error { return admin.Create(ctx, configMap(releaseNamespace, first), client.DryRunAll) }).
			Should(MatchError(ContainSubstring(message)))
	})

	It("refuses an admin outside the break-glass groups any write of the checkpoint, and lets the metering ServiceAccount", func() {
		Expect(admin.Create(ctx, configMap(releaseNamespace, last))).To(MatchError(ContainSubstring(
			"ConfigMap " + last + " " + message + " and the break-glass groups (admissionPolicies.breakGlassGroups) may create it")))
		for _, part := range []string{first + "-a-1", first + "-b-8"} {
			Expect(admin.Create(ctx, configMap(releaseNamespace, part))).
				To(MatchError(ContainSubstring("ConfigMap "+part+" "+message)), "a data part of either generation")
		}

		Expect(meter.Create(ctx, configMap(releaseNamespace, first))).To(Succeed(), "the metering ServiceAccount creates it")
		cm := &corev1.ConfigMap{}
		Expect(meter.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: first}, cm)).To(Succeed())
		cm.Data["parts"] = "2"
		Expect(meter.Update(ctx, cm)).To(Succeed(), "the metering ServiceAccount updates it")

		Expect(admin.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
		cm.Data["lastPass"] = "2999-01-01T00:00:00Z"
		Expect(admin.Update(ctx, cm)).To(MatchError(ContainSubstring("may update it")))
		Expect(admin.Delete(ctx, cm)).To(MatchError(ContainSubstring("may delete it")))
		Expect(admin.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
		Expect(cm.Data).NotTo(HaveKey("lastPass"))
	})

	It("lets a break-glass member create, update and delete the checkpoint", func() {
		cm := &corev1.ConfigMap{}
		Expect(oncall.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: first}, cm)).To(Succeed())
		cm.Data["note"] = "repaired by hand"
		Expect(oncall.Update(ctx, cm)).To(Succeed())
		Expect(oncall.Delete(ctx, cm)).To(Succeed())
		Expect(oncall.Create(ctx, configMap(releaseNamespace, last))).To(Succeed())
	})

	It("leaves other ConfigMaps alone", func() {
		Expect(admin.Create(ctx, configMap(releaseNamespace, checkpoint.DefaultName+"-8"))).To(Succeed(), "beyond the parts")
		Expect(admin.Create(ctx, configMap(releaseNamespace, checkpoint.DefaultName+"-a-9"))).
			To(Succeed(), "beyond the parts of a generation")
		Expect(admin.Create(ctx, configMap(releaseNamespace, "unrelated"))).To(Succeed())
		Expect(admin.Create(ctx, configMap("default", first))).To(Succeed(), "the same name in another namespace")
	})

	It("is not rendered with admissionPolicies.meteringCheckpoint.enabled=false, while the other policies are", func() {
		out, err := framework.Helm(ctx, dir, "template", "meshstack-operator", framework.ChartDir, "--namespace", releaseNamespace,
			"--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
			"--set", "admissionPolicies.meteringCheckpoint.enabled=false")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).NotTo(ContainSubstring("kind: ValidatingAdmissionPolicy\nmetadata:\n  name: meshstack-operator-metering-checkpoint"))
		Expect(string(out)).To(ContainSubstring("kind: ValidatingAdmissionPolicy\nmetadata:\n  name: meshstack-operator-managed-objects"))
	})
})
