package replicator_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// Serial: it stops the suite's operator and runs a fresh one in its place.
var _ = Describe("A converged project", Serial, func() {
	It("costs no write requests when a restarted operator reconciles it again", func() {
		var projects []*meshv1.MeshProject
		for range 10 {
			projects = append(projects, aProject().users("admin", "alice").users("view", "bob").groups("edit", "devs").tag("env", "prod").create())
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
		fresh, err := framework.StartManager(identity.Config, replicatorOptions())
		Expect(err).NotTo(HaveOccurred())
		running = fresh

		Eventually(func() float64 {
			return framework.ReconcileCount("meshproject") - before
		}, timeout, interval).Should(BeNumerically(">=", len(all.Items)))
		Expect(fresh.Writes()).To(BeZero(), "a converged state must cost no writes")
	})
})
