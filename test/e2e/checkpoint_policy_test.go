package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// TestCheckpointPolicy installs the chart into an API server that enforces
// ValidatingAdmissionPolicies and checks that only the metering
// ServiceAccount and the break-glass groups may create, update and delete
// the checkpoint's ConfigMaps, and that other ConfigMaps are not affected.
func TestCheckpointPolicy(t *testing.T) {
	g := newG(t)
	ctx := context.Background()
	dir := t.TempDir()
	fw, adminKubeconfig := startControlPlane(t, dir)
	c := fw.Client

	_, err := framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
		"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
		"--set", "admissionPolicies.breakGlassGroups={platform-admins}", "--set", "replicator.enabled=false")
	g.Expect(err).NotTo(HaveOccurred())

	meter := impersonating(g, fw, "system:serviceaccount:"+releaseNamespace+":meshfed-metering", "system:serviceaccounts", "system:serviceaccounts:"+releaseNamespace)
	oncall := breakGlassMember(g, fw)
	admin := c // cluster-admin, not in a break-glass group

	configMap := func(namespace, name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: map[string]string{"parts": "1"}}
	}
	const message = "is the metering checkpoint (usage counted and not yet delivered); only the metering ServiceAccount meshfed-metering"
	first := checkpoint.DefaultName
	last := checkpoint.DefaultName + "-7" // the last part of the layout before generations

	// The policy acts a moment after it is installed: wait with a dry run.
	g.Eventually(func() error { return admin.Create(ctx, configMap(releaseNamespace, first), client.DryRunAll) }).
		Should(MatchError(ContainSubstring(message)))

	t.Run("an admin outside the break-glass groups may not create, update or delete the checkpoint", func(t *testing.T) {
		g := newG(t)
		g.Expect(admin.Create(ctx, configMap(releaseNamespace, last))).To(MatchError(ContainSubstring("ConfigMap " + last + " " + message + " and the break-glass groups (admissionPolicies.breakGlassGroups) may create it")))
		for _, part := range []string{first + "-a-1", first + "-b-8"} {
			g.Expect(admin.Create(ctx, configMap(releaseNamespace, part))).To(MatchError(ContainSubstring("ConfigMap "+part+" "+message)), "a data part of either generation")
		}

		g.Expect(meter.Create(ctx, configMap(releaseNamespace, first))).To(Succeed(), "the metering ServiceAccount creates it")
		cm := &corev1.ConfigMap{}
		g.Expect(meter.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: first}, cm)).To(Succeed())
		cm.Data["parts"] = "2"
		g.Expect(meter.Update(ctx, cm)).To(Succeed(), "the metering ServiceAccount updates it")

		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
		cm.Data["lastPass"] = "2999-01-01T00:00:00Z"
		g.Expect(admin.Update(ctx, cm)).To(MatchError(ContainSubstring("may update it")))
		g.Expect(admin.Delete(ctx, cm)).To(MatchError(ContainSubstring("may delete it")))
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(cm), cm)).To(Succeed())
		g.Expect(cm.Data).NotTo(HaveKey("lastPass"))
	})

	t.Run("a break-glass member may", func(t *testing.T) {
		g := newG(t)
		cm := &corev1.ConfigMap{}
		g.Expect(oncall.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: first}, cm)).To(Succeed())
		cm.Data["note"] = "repaired by hand"
		g.Expect(oncall.Update(ctx, cm)).To(Succeed())
		g.Expect(oncall.Delete(ctx, cm)).To(Succeed())
		g.Expect(oncall.Create(ctx, configMap(releaseNamespace, last))).To(Succeed())
	})

	t.Run("other ConfigMaps are not affected", func(t *testing.T) {
		g := newG(t)
		g.Expect(admin.Create(ctx, configMap(releaseNamespace, checkpoint.DefaultName+"-8"))).To(Succeed(), "beyond the parts")
		g.Expect(admin.Create(ctx, configMap(releaseNamespace, checkpoint.DefaultName+"-a-9"))).To(Succeed(), "beyond the parts of a generation")
		g.Expect(admin.Create(ctx, configMap(releaseNamespace, "unrelated"))).To(Succeed())
		g.Expect(admin.Create(ctx, configMap("default", first))).To(Succeed(), "the same name in another namespace")
	})

	t.Run("admissionPolicies.meteringCheckpoint.enabled=false renders no checkpoint policy", func(t *testing.T) {
		g := newG(t)
		out, err := framework.Helm(ctx, dir, "template", "meshstack-operator", framework.ChartDir, "--namespace", releaseNamespace,
			"--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy", "--set", "admissionPolicies.meteringCheckpoint.enabled=false")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(out)).NotTo(ContainSubstring("kind: ValidatingAdmissionPolicy\nmetadata:\n  name: meshstack-operator-metering-checkpoint"))
		g.Expect(string(out)).To(ContainSubstring("kind: ValidatingAdmissionPolicy\nmetadata:\n  name: meshstack-operator-managed-objects"))
	})
}
