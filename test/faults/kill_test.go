package faults

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	// convergeAll bounds how long 500 projects take to converge, from
	// scratch or after the kill: about 20 s on a 2-core machine.
	convergeAll = 2 * time.Minute
	// projectsPoll is how often a wait lists all 500 projects or scrapes
	// every metric again, work that would otherwise take CPU from the
	// replicator the spec measures.
	projectsPoll = 2 * framework.PollInterval
)

// The spec creates 500 MeshProjects, starts the replicator
// and SIGKILLs it once a part of them has converged. A restarted replicator
// converges all of them, and no namespace or RoleBinding is left over,
// missing or doubled. A replicator started once more on the converged
// projects makes no write at all (kube-apiserver's audit log counts them).
var _ = Describe("A replicator SIGKILLed while converging 500 projects", Serial, func() {
	It("is finished by its restart with nothing left over, missing or doubled, and a third replicator writes nothing", func() {
		startAfresh()
		const n, customer = 500, "killed"
		// A shorter lease than the chart's, so that the restarted replicator
		// waits 5 s, not 15 s, for the Lease the killed one held (the failover
		// tests use the chart's timings); it also shows the flags reach the Lease.
		timings := []string{"--leader-election-lease-duration=5s", "--leader-election-renew-deadline=4s",
			"--leader-election-retry-period=1s"}

		names := projectNames(customer, n)
		createConcurrently(names)
		first := startReplica("replicator", "replicator-1", timings...)
		started := time.Now()
		Eventually(func(g Gomega) {
			ready := convergedCount(g, customer+"-")
			g.Expect(ready).To(BeNumerically(">=", n/5))
		}, convergeAll).WithPolling(projectsPoll).Should(Succeed())
		first.Kill()
		killed := time.Now()
		ready := convergedCount(Default, customer+"-")
		namespaces, bindings := managedObjects(customer)
		framework.Logf("SIGKILL %.1f s after the start: %d of %d projects Ready, %d namespaces and %d RoleBindings made",
			killed.Sub(started).Seconds(), ready, n, namespaces, bindings)
		Expect(ready).To(BeNumerically("<", n), "killed in the middle of converging")
		Expect(*lease(Default, "replicator").Spec.LeaseDurationSeconds).
			To(BeEquivalentTo(5), "--leader-election-lease-duration reaches the Lease")

		second := startReplica("replicator", "replicator-2", timings...)
		restarted := time.Now()
		leader(framework.SlowTimeout, second)
		leading := time.Since(restarted)
		took := waitConverged(restarted, convergeAll, names...)
		framework.Logf("restarted: leads after %.1f s (the killed one's Lease expired), all %d projects Ready %.1f s after the restart",
			leading.Seconds(), n, took.Seconds())
		expectNoOrphansOrDuplicates()
		Expect(second.Stop()).To(Succeed())

		// Once more, on converged projects: the new replicator reconciles every
		// project and writes nothing.
		metrics, err := framework.FreeAddress()
		Expect(err).NotTo(HaveOccurred())
		since := time.Now()
		third := startReplica("replicator", "replicator-3",
			slices.Concat(timings, []string{"--metrics-bind-address=" + metrics, "--metrics-secure=false"})...)
		var all meshv1.MeshProjectList
		Expect(fw.Client.List(context.Background(), &all)).To(Succeed())
		var reconciles float64
		Eventually(func(g Gomega) {
			m := scrape(g, metrics)
			reconciles = m.sum("controller_runtime_reconcile_total", `controller="meshproject"`)
			g.Expect(reconciles).To(BeNumerically(">=", len(all.Items)))
			g.Expect(m.sum("workqueue_depth", `name="meshproject"`)).To(BeZero())
			g.Expect(m.sum("controller_runtime_active_workers", `controller="meshproject"`)).To(BeZero())
		}, framework.SlowTimeout).WithPolling(projectsPoll).Should(Succeed(), "%s reconciles every project", third)
		writes := replicatorWrites(since)
		Expect(writes).To(BeEmpty(), "a replicator on converged projects writes nothing")
		framework.Logf("started again on %d converged projects: %.0f reconciles, 0 writes", len(all.Items), reconciles)
	})
})

// createConcurrently creates the projects with 20 clients at once.
func createConcurrently(names []string) {
	GinkgoHelper()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for name := range work {
				customer, project, _ := strings.Cut(name, "-")
				errs <- fw.Client.Create(context.Background(), newProject(customer, project))
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

// managedObjects counts the customer's namespaces and the RoleBindings the
// operator made in them.
func managedObjects(customer string) (namespaces, bindings int) {
	GinkgoHelper()
	ctx := context.Background()
	var nsList corev1.NamespaceList
	Expect(fw.Client.List(ctx, &nsList, customerLabel(customer))).To(Succeed())
	var rbList rbacv1.RoleBindingList
	Expect(fw.Client.List(ctx, &rbList, managedLabel)).To(Succeed())
	for _, rb := range rbList.Items {
		if strings.HasPrefix(rb.Namespace, customer+"-") {
			bindings++
		}
	}
	return len(nsList.Items), bindings
}

// metrics are the samples of a Prometheus text exposition, line by line.
type metrics []string

// scrape reads a replica's plain-HTTP /metrics.
func scrape(g Gomega, address string) metrics {
	body, status := httpGet("http://" + address + "/metrics")
	g.Expect(status).To(Equal(200), "GET /metrics")
	return strings.Split(body, "\n")
}

// sum adds up the samples of the metric whose labels contain label.
func (m metrics) sum(name, label string) float64 {
	var total float64
	for _, line := range m {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			total += v
		}
	}
	return total
}
