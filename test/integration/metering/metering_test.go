package metering_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	mi  = float64(1 << 20)
	gib = float64(1 << 30)
	pi  = float64(1 << 50)
	// eps absorbs float rounding; everything exact must match to it.
	eps = 1e-6
)

var windowSeconds = window.Seconds()

var _ = Describe("Metering", func() {
	var output string
	BeforeEach(func() { output = filepath.Join(GinkgoT().TempDir(), "usage.jsonl") })

	It("writes exact usage records per namespace and window, under the pods get/list identity alone", func() {
		c := newCustomer()
		longAgo := time.Now().Add(-time.Hour)
		steady, bare, huge, idle, gone, late, plain := c+"-steady", c+"-bare", c+"-huge", c+"-idle", c+"-gone", c+"-late", "plain"+c
		createPod(steady, "web", resources("250m", "64Mi", "500m", "128Mi"), corev1.PodRunning, longAgo)
		createPod(bare, "bare", corev1.ResourceRequirements{}, corev1.PodRunning, longAgo)
		createPod(huge, "huge", resources("1k", "1Pi", "", ""), corev1.PodRunning, longAgo)
		createPod(idle, "pending", resources("1", "1Gi", "", ""), corev1.PodPending, time.Time{})
		createPod(idle, "succeeded", resources("1", "1Gi", "", ""), corev1.PodSucceeded, longAgo)
		createPod(idle, "failed", resources("1", "1Gi", "", ""), corev1.PodFailed, longAgo)
		goner := createPod(gone, "job", resources("100m", "", "", ""), corev1.PodRunning, longAgo)
		createPod(plain, "bare", corev1.ResourceRequirements{}, corev1.PodRunning, longAgo)

		// The registry is process-wide and earlier specs' meters counted in
		// it too: this spec asserts what its own meter adds.
		emittedBefore := metricValue("meshstack_metering_records_emitted_total")
		listErrorsBefore := metricValue("meshstack_metering_list_errors_total")
		passesBefore := metricValue("meshstack_metering_pass_duration_seconds")
		m := startMeter(meteringOptions(output))
		started := time.Now()

		// A pod that starts while the meter runs counts from its startTime.
		lateStart := nextWholeSecond(0)
		createPod(late, "web", resources("1", "", "", ""), corev1.PodRunning, lateStart)

		// All pods of a namespace vanish in the middle of a window.
		waitForRecords(fileRecords(output), gone, started, 1)
		waitUntilInWindow(0.3, 0.6)
		goneBefore, goneAfter := aroundNow(func() { deletePod(goner) })

		// One more window shows that the vanished namespace gets no records.
		lastWindow := usage.WindowStart(goneAfter, window).Add(window)
		waitForRecords(fileRecords(output), steady, lastWindow, 1)
		waitForRecords(fileRecords(output), late, lastWindow, 1)
		m.stop()
		all := fileRecords(output)(Default)
		expectUniqueIDs(all)

		By("counting a pod that ran through every window exactly, windows aligned and contiguous")
		records := inNamespace(all, steady)
		expectContiguous(records)
		for _, r := range records {
			Expect(r.CustomerIdentifier).To(Equal(c))
			Expect(r.ProjectIdentifier).To(Equal("steady"))
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 0.25*windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds).To(BeNumerically("~", 64*mi*windowSeconds, eps))
			Expect(r.CPULimitCoreSeconds).To(BeNumerically("~", 0.5*windowSeconds, eps))
			Expect(r.MemoryLimitByteSeconds).To(BeNumerically("~", 128*mi*windowSeconds, eps))
			Expect(r.Samples).To(BeNumerically(">", 0))
		}

		By("counting pod-seconds alone for a pod without requests or limits")
		for _, r := range inNamespace(all, bare) {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
			Expect([]float64{r.CPURequestCoreSeconds, r.MemoryRequestByteSeconds, r.CPULimitCoreSeconds, r.MemoryLimitByteSeconds}).
				To(HaveEach(BeZero()))
		}

		By("handling huge quantities without overflow")
		records = inNamespace(all, huge)
		Expect(records).NotTo(BeEmpty())
		for _, r := range records {
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 1000*windowSeconds, eps))
			Expect(r.MemoryRequestByteSeconds / (pi * windowSeconds)).To(BeNumerically("~", 1, 1e-12))
		}

		By("ignoring Pending pods, and ended ones that hold no trace of when they ended")
		Expect(inNamespace(all, idle)).To(BeEmpty())

		By("leaving out the identifiers of a namespace not named <customer>-<project>")
		records = inNamespace(all, plain)
		Expect(records).NotTo(BeEmpty())
		Expect(records[0].CustomerIdentifier).To(BeEmpty())
		Expect(records[0].ProjectIdentifier).To(BeEmpty())

		By("counting a pod from its startTime exactly")
		records = inNamespace(all, late)
		expectContiguous(records)
		Expect(records[0].WindowStart).To(Equal(usage.WindowStart(lateStart, window)))
		Expect(records[0].PodSeconds).To(BeNumerically("~", records[0].WindowEnd.Sub(lateStart).Seconds(), eps))
		for _, r := range records[1:] {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
		}

		By("counting a vanished pod until the last pass that saw it, and no later windows")
		records = inNamespace(all, gone)
		expectContiguous(records)
		last := records[len(records)-1]
		// The last pass that saw the pod may have run in the window before
		// the one it was deleted in, when it was deleted just after a boundary.
		Expect(last.WindowStart).To(BeTemporally("<=", usage.WindowStart(goneBefore, window)))
		Expect(last.WindowStart).To(BeTemporally(">=", usage.WindowStart(goneBefore.Add(-(passInterval+passJitter)), window)))
		for _, r := range records[:len(records)-1] {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
		}
		Expect(last.PodSeconds).To(BeNumerically("<=", goneAfter.Sub(last.WindowStart).Seconds()+eps))
		Expect(last.PodSeconds).To(BeNumerically(">=", goneBefore.Sub(last.WindowStart).Seconds()-(passInterval+passJitter).Seconds()))
		Expect(last.CPURequestCoreSeconds).To(BeNumerically("~", 0.1*last.PodSeconds, eps))

		By("writing nothing but its checkpoint, starting no informer (nothing forbidden in the log)")
		Expect(m.Writes()).To(BeNumerically(">", 0))
		Expect(m.WritePaths()).To(HaveEach(MatchRegexp(`^(POST /api/v1/namespaces/%s/configmaps|PUT /api/v1/namespaces/%s/configmaps/%s)$`,
			operatorNamespace, operatorNamespace, checkpoint.DefaultName)))
		Expect(logs.String()).NotTo(ContainSubstring("forbidden"))

		By("exporting metrics")
		// The meter counts a window's records once the output took them; the
		// newest window may have been written and not yet counted at the stop.
		newest := all[0]
		for _, r := range all {
			if r.WindowStart.After(newest.WindowStart) {
				newest = r
			}
		}
		Expect(metricValue("meshstack_metering_records_emitted_total") - emittedBefore).To(BeNumerically(">=", len(all)-newest.WindowRecords))
		Expect(metricValue("meshstack_metering_pods_seen")).To(BeNumerically(">=", 8))
		Expect(metricValue("meshstack_metering_last_success_timestamp_seconds")).To(BeNumerically(">", float64(started.Unix())))
		Expect(metricValue("meshstack_metering_list_errors_total") - listErrorsBefore).To(BeZero())
		Expect(metricValue("meshstack_metering_pass_duration_seconds") - passesBefore).To(BeNumerically(">", 0))
	})

	// restartScenario meters a steady pod and a short one that runs and ends
	// in the window that is open when handOver happens; handOver stops the
	// first meter and returns the second. It checks that the records of both
	// together have every window once (or as identical duplicates) and
	// count the short pod, which only the first meter ever saw.
	restartScenario := func(opts func(out *syncBuffer) operator.Options, handOver func(first *meter, secondOut *syncBuffer) *meter) {
		GinkgoHelper()
		c := newCustomer()
		steady, short := c+"-steady", c+"-short"
		createPod(steady, "web", resources("500m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		firstOut, secondOut := &syncBuffer{}, &syncBuffer{}
		both := stdoutRecords(firstOut, secondOut)

		first := startMeter(opts(firstOut))
		waitForRecords(both, steady, time.Now(), 1)

		waitUntilInWindow(0.05, 0.3)
		shortStart := nextWholeSecond(0)
		pod := createPod(short, "job", resources("2", "", "", ""), corev1.PodRunning, shortStart)
		Eventually(func(g Gomega) {
			g.Expect(loadCheckpoint(g).Open).To(ContainElement(HaveField("Usage", HaveKey(short))))
		}, timeout, poll).Should(Succeed(), "the checkpoint never held the short pod's namespace")
		shortEndBefore, shortEndAfter := aroundNow(func() { deletePod(pod) })

		var stopped time.Time
		second := handOver(first, secondOut)
		stopped = time.Now()
		lastWindow := usage.WindowStart(stopped, window).Add(window)
		waitForRecords(both, steady, lastWindow, 1)
		second.stop()

		all := deduplicated(both(Default))
		records := inNamespace(all, steady)
		expectContiguous(records)
		Expect(records[len(records)-1].WindowStart).NotTo(BeTemporally("<", lastWindow))
		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps), "window %s", r.WindowStart)
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", 0.5*windowSeconds, eps))
		}
		shortSeconds := sumPodSeconds(inNamespace(all, short))
		Expect(shortSeconds).To(BeNumerically("<=", shortEndAfter.Sub(shortStart).Seconds()+eps))
		Expect(shortSeconds).To(BeNumerically(">=", shortEndBefore.Sub(shortStart).Seconds()-(passInterval+passJitter).Seconds()))
		Expect(logs.String()).To(ContainSubstring("resuming from the checkpoint"))
	}

	It("loses nothing when the meter restarts in the middle of a window, with stdout as output and no volume", func() {
		restartScenario(stdoutOptions, func(first *meter, secondOut *syncBuffer) *meter {
			first.stop()
			return startMeter(stdoutOptions(secondOut))
		})
	})

	It("loses nothing when a standby replica that shares no volume takes over from the leader", func() {
		c := newCustomer()
		withLeaderElection := func(out *syncBuffer) operator.Options {
			opts := stdoutOptions(out)
			opts.LeaderElect = true
			opts.LeaderElectionID = "metering-" + c
			return opts
		}
		restartScenario(withLeaderElection, func(first *meter, secondOut *syncBuffer) *meter {
			second := startMeter(withLeaderElection(secondOut))
			first.stop()
			return second
		})
	})

	It("loses no window when the API server is down for 30 seconds", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("250m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		proxy, err := framework.StartProxy(identity.Config.Host)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		cfg := rest.CopyConfig(identity.Config)
		cfg.Host = proxy.URL()

		// A supervisor restarts the meter whenever it exits, as the kubelet
		// restarts a container: losing the lease during the outage ends
		// the process.
		var outs []*syncBuffer
		var mu sync.Mutex
		restarts := 0
		supervising, stopSupervising := context.WithCancel(ctx)
		supervised := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(supervised)
			for supervising.Err() == nil {
				out := &syncBuffer{}
				mu.Lock()
				outs = append(outs, out)
				mu.Unlock()
				opts := stdoutOptions(out)
				opts.LeaderElect = true
				opts.LeaderElectionID = "metering-" + c
				m, err := framework.StartManager(cfg, opts)
				Expect(err).NotTo(HaveOccurred())
				select {
				case <-m.Exited():
					restarts++
				case <-supervising.Done():
					Expect(m.Stop()).To(Succeed())
				}
			}
		}()
		all := func(g Gomega) []usage.Record {
			mu.Lock()
			defer mu.Unlock()
			return stdoutRecords(outs...)(g)
		}
		waitForRecords(all, steady, time.Now(), 1)

		// Earlier specs may have counted list errors: the outage must add some.
		listErrorsBefore := metricValue("meshstack_metering_list_errors_total")
		down := time.Now()
		proxy.Down()
		Eventually(func() float64 { return metricValue("meshstack_metering_list_errors_total") }, timeout, poll).
			Should(BeNumerically(">", listErrorsBefore))
		time.Sleep(30*time.Second - time.Since(down)) // the outage itself: a fixed span of time is what is being tested
		Expect(proxy.Up()).To(Succeed())
		up := time.Now()

		lastWindow := usage.WindowStart(up, window).Add(window)
		Eventually(func(g Gomega) {
			records := inNamespace(all(g), steady)
			g.Expect(records).NotTo(BeEmpty())
			g.Expect(records[len(records)-1].WindowStart).NotTo(BeTemporally("<", lastWindow))
		}, 3*timeout, poll).Should(Succeed())
		stopSupervising()
		<-supervised

		records := inNamespace(deduplicated(all(Default)), steady)
		expectContiguous(records)
		Expect(records[0].WindowStart).To(BeTemporally("<", down))
		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps), "window %s", r.WindowStart)
		}
		GinkgoWriter.Printf("The meter was restarted %d times during the outage\n", restarts)
	})

	It("stops a second meter running without leader election before it delivers, and loses nothing", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		firstOut, secondOut := &syncBuffer{}, &syncBuffer{}
		first := startMeter(stdoutOptions(firstOut))
		waitForRecords(stdoutRecords(firstOut), steady, time.Now(), 1)
		second := startMeter(stdoutOptions(secondOut))

		// One of the two saves the checkpoint first; the other's next save
		// conflicts and it stops.
		var fenced, survivor *meter
		Eventually(func() bool {
			select {
			case <-first.Exited():
				fenced, survivor = first, second
			case <-second.Exited():
				fenced, survivor = second, first
			default:
				return false
			}
			return true
		}, timeout, poll).Should(BeTrue(), "neither meter was fenced")
		Expect(fenced.Err()).To(MatchError(ContainSubstring("no longer the leader")))
		Expect(errors.Is(fenced.Err(), checkpoint.ErrFenced)).To(BeTrue())

		lastWindow := usage.WindowStart(time.Now(), window).Add(window)
		waitForRecords(stdoutRecords(firstOut, secondOut), steady, lastWindow, 1)
		survivor.stop()
		records := inNamespace(deduplicated(stdoutRecords(firstOut, secondOut)(Default)), steady)
		expectContiguous(records)
		for _, r := range records {
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps), "window %s", r.WindowStart)
		}
	})

	It("meters Bound PersistentVolumeClaims per storage class once it may, and pods while it may not", func() {
		c := newCustomer()
		app := c + "-app"
		createPod(app, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		createClaim(app, "fast-data", ptr.To("fast"), "10Gi", corev1.ClaimBound)
		createClaim(app, "plain-data", nil, "1Gi", corev1.ClaimBound)
		createClaim(app, "waiting", ptr.To("fast"), "", corev1.ClaimPending)

		out := &syncBuffer{}
		opts := stdoutOptions(out)
		opts.MeteringResources = []string{metering.ResourcePods, metering.ResourcePersistentVolumeClaims}
		startMeter(opts)

		By("metering pods and saying what is missing without the storage role")
		waitForRecords(stdoutRecords(out), app, time.Now(), 1)
		Expect(logs.String()).To(ContainSubstring("Metering PersistentVolumeClaims is not permitted"))
		for _, r := range inNamespace(stdoutRecords(out)(Default), app) {
			Expect(r.StorageByteSeconds).To(BeZero())
			Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
		}

		By("metering storage once the chart's storage ClusterRole is bound")
		bindStorageRole()
		granted := time.Now()
		since := usage.WindowStart(granted, window).Add(window)
		records := waitForRecords(stdoutRecords(out), app, since, 1)
		r := records[len(records)-1]
		Expect(r.StorageByteSeconds).To(BeNumerically("~", 11*gib*windowSeconds, 1))
		Expect(r.StorageByteSecondsByClass).To(HaveLen(2))
		Expect(r.StorageByteSecondsByClass["fast"]).To(BeNumerically("~", 10*gib*windowSeconds, 1))
		Expect(r.StorageByteSecondsByClass[""]).To(BeNumerically("~", gib*windowSeconds, 1))
		Expect(r.PodSeconds).To(BeNumerically("~", windowSeconds, eps))
	})

	It("POSTs every window to an HTTP receiver that fails at first, with stable idempotency keys and the cluster's name", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
		receiver := newFlakyReceiver(3)
		DeferCleanup(receiver.Close)
		before := deliveryFailures("503")

		opts := meteringOptions(receiver.URL)
		opts.MeteringHTTP.InitialBackoff, opts.MeteringHTTP.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
		opts.MeteringCluster = "envtest-a"
		startMeter(opts)
		records := waitForRecords(receiver.records, steady, time.Now(), 3)
		// Every record names the cluster; expectContiguous checks that each
		// has the id with the cluster.
		Expect(records).To(HaveEach(HaveField("Cluster", "envtest-a")))
		Expect(deliveryFailures("503") - before).To(BeNumerically(">=", 3))
		expectContiguous(inNamespace(deduplicated(records), steady))
		Expect(receiver.contentTypes()).To(HaveEach("application/x-ndjson"))
		// The three refusals were of one batch, retried under the key it first
		// had, and then accepted under it.
		Expect(receiver.refusedKeys()).To(HaveLen(1))
		Expect(receiver.acceptedKeys()).To(ContainElements(receiver.refusedKeys()))
		Eventually(func() float64 { return metricValue("meshstack_metering_pending_windows") }, timeout, poll).Should(BeZero())
	})

	It("repairs a garbled last line and keeps every earlier record", func() {
		c := newCustomer()
		steady := c + "-steady"
		createPod(steady, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))

		// An earlier run wrote the window before the current one, then
		// crashed in the middle of a line.
		previous := usage.WindowStart(time.Now(), window).Add(-window)
		earlier := usage.Record{
			ID: usage.RecordID("", "earlier-run", previous, previous.Add(window)), Namespace: "earlier-run",
			CustomerIdentifier: "earlier", ProjectIdentifier: "run",
			WindowStart: previous, WindowEnd: previous.Add(window), WindowRecords: 1,
			Usage: usage.Usage{PodSeconds: 1, Samples: 1},
		}
		line, err := json.Marshal(earlier)
		Expect(err).NotTo(HaveOccurred())
		garbled := `{"id":"0123456789abcdef","namespace":"` + c
		Expect(os.WriteFile(output, append(append(line, '\n'), garbled...), 0o600)).To(Succeed())

		startMeter(meteringOptions(output))
		waitForRecords(fileRecords(output), steady, previous.Add(window), 2)

		data, err := os.ReadFile(output)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.HasPrefix(string(data), string(line)+"\n")).To(BeTrue(), "the earlier record was not kept:\n%s", data)
		Expect(string(data)).NotTo(ContainSubstring(garbled))
		all := fileRecords(output)(Default)
		expectUniqueIDs(all)
		expectContiguous(inNamespace(all, steady))
		Expect(inNamespace(all, steady)[0].WindowStart).To(Equal(previous.Add(window)), "resumed after the earlier window")
		Expect(logs.String()).To(ContainSubstring("torn write"))
		Expect(logs.String()).To(ContainSubstring(`"garbledLastLine": true`))
	})

	It("has an identity that can get and list pods, keep its checkpoint, and nothing else", func() {
		By("generating exactly the seed's meshfed-metering rules as the ClusterRole")
		objs, err := framework.ReadObjects(filepath.Join(framework.RepoRoot(), "config", "rbac", "metering", "role.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var clusterRole rbacv1.ClusterRole
		for _, o := range objs {
			if o.GetObjectKind().GroupVersionKind().Kind == "ClusterRole" {
				Expect(fw.Client.Get(ctx, client.ObjectKey{Name: o.GetName()}, &clusterRole)).To(Succeed())
			}
		}
		Expect(clusterRole.Rules).
			To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}))

		By("asking the API server what the identity may do")
		allowed := func(verb, group, resource, namespace string) bool {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   identity.UserName(),
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: verb, Group: group, Resource: resource, Namespace: namespace,
				},
			}}
			Expect(fw.Client.Create(ctx, sar)).To(Succeed())
			return sar.Status.Allowed
		}
		Expect(allowed("list", "", "pods", "")).To(BeTrue())
		Expect(allowed("get", "", "pods", "default")).To(BeTrue())
		Expect(allowed("watch", "", "pods", "")).To(BeFalse())
		Expect(allowed("get", "", "namespaces", "")).To(BeFalse())
		Expect(allowed("list", "", "namespaces", "")).To(BeFalse())
		Expect(allowed("list", "meshcloud.io", "meshprojects", "")).To(BeFalse())
		Expect(allowed("update", "coordination.k8s.io", "leases", operatorNamespace)).To(BeTrue())
		Expect(allowed("update", "coordination.k8s.io", "leases", "default")).To(BeFalse())
		allowedNamed := func(verb, name, namespace string) bool {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               identity.UserName(),
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "configmaps", Name: name, Namespace: namespace},
			}}
			Expect(fw.Client.Create(ctx, sar)).To(Succeed())
			return sar.Status.Allowed
		}
		Expect(allowedNamed("get", checkpoint.DefaultName, operatorNamespace)).To(BeTrue())
		Expect(allowedNamed("update", checkpoint.DefaultName+"-a-8", operatorNamespace)).To(BeTrue())
		Expect(allowedNamed("update", checkpoint.DefaultName+"-b-8", operatorNamespace)).To(BeTrue())
		Expect(allowedNamed("update", checkpoint.DefaultName+"-a-9", operatorNamespace)).To(BeFalse())
		Expect(allowedNamed("get", checkpoint.DefaultName+"-7", operatorNamespace)).To(BeTrue(), "the layout before generations is read")
		Expect(allowedNamed("update", checkpoint.DefaultName+"-7", operatorNamespace)).To(BeFalse(), "and never written")
		Expect(allowedNamed("get", checkpoint.DefaultName+"-8", operatorNamespace)).To(BeFalse())
		Expect(allowedNamed("update", "kube-root-ca.crt", operatorNamespace)).To(BeFalse())
		Expect(allowedNamed("get", checkpoint.DefaultName, "default")).To(BeFalse())
		Expect(allowedNamed("create", "", operatorNamespace)).To(BeTrue())
		Expect(allowedNamed("list", "", operatorNamespace)).To(BeFalse())
		Expect(allowedNamed("watch", "", operatorNamespace)).To(BeFalse())
		Expect(allowedNamed("delete", checkpoint.DefaultName, operatorNamespace)).To(BeFalse())
		Expect(allowed("list", "", "persistentvolumeclaims", "")).To(BeFalse(), "storage metering is an optional role")

		By("being refused a watch on pods and a list of namespaces")
		cs, err := kubernetes.NewForConfig(identity.Config)
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "watch pods: %v", err)
		_, err = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "list namespaces: %v", err)
		_, err = cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
		Expect(err).NotTo(HaveOccurred())
	})
})

// metricValue is the value of a counter or gauge, or the sample count of a
// histogram, in the manager's registry.
func metricValue(name string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	Fail("no metric " + name)
	return math.NaN()
}
