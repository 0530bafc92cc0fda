package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// A pass a second and windows of 2 s: the meter saves its checkpoint after
// every pass and after every delivered window, three saves every 2 s.
const (
	killInterval = time.Second
	killWindow   = 2 * time.Second
)

// The checkpoint must span several ConfigMaps, and the meter has no knob
// for the size of a part (900 KiB of gzipped JSON). A namespace costs about
// 76 bytes per window even with 63 random characters in its name and pods
// whose requests differ, so pods alone would take some 12,000 namespaces.
// A Bound claim's storage class instead is a key of its namespace's
// storageByteSecondsByClass in every window: 253 random characters, about
// 168 bytes gzipped. 24 namespaces × 250 claims of their own classes make
// some 1.01 MB a window: 2 parts for the open window, 3 while a closed one
// is pending. (A record holds a namespace's classes, ~70 KB here, well
// inside the 1 MiB line framework.ParseRecords reads.) The checkpoint may
// take 8 ConfigMaps: the test lets each new process catch up before it
// kills it again, so that the windows that close while no process meters
// do not pile up from kill to kill.
const (
	killNamespaces = 24
	killClaims     = 250 // per namespace
	claimBytes     = 1 << 30
)

// Names of the keys of the checkpoint's first ConfigMap (see
// internal/metering/checkpoint/configmap.go): how many data parts the checkpoint it
// names has, and the announcement "<generation> <sha256>" of a save in
// flight, which the commit removes.
const (
	headPartsKey    = "parts"
	headWritingKey  = "writing"
	headLastPassKey = "lastPass"
	headPendingKey  = "pendingWindows"
)

// killPoint is where a kill lands: at a write of a save (after the API
// server applied it, or before it reached it), or at a random moment.
type killPoint struct {
	write  checkpointWrite
	after  bool
	random bool
}

func (p killPoint) String() string {
	switch {
	case p.random:
		return "at a random moment"
	case p.after:
		return "after " + p.write.String()
	}
	return "before " + p.write.String()
}

var (
	announcement = checkpointWrite{kind: "announcement"}
	commit       = checkpointWrite{kind: "commit"}
)

func part(i int) checkpointWrite { return checkpointWrite{kind: "part", part: i} }

// killPlan is where each of the test's kills lands, in order: every kind
// of write of a save, on both sides of the API server, and two moments no
// write decides (in a pass, a delivery, a save or between them). Part 3
// is written only while a closed window is pending.
var killPlan = []killPoint{
	{write: part(1), after: true},
	{write: commit},
	{write: announcement, after: true},
	{write: part(2), after: true},
	{write: commit, after: true},
	{write: part(3)},
	{random: true},
	{write: part(2)},
	{random: true},
}

// meteredNamespace is what the test made in a namespace, and so what each
// of its windows must count.
type meteredNamespace struct {
	name          string
	pods, claims  int
	cpuPerPod     float64 // cores
	claimsCreated time.Time
}

// The spec SIGKILLs the metering process nine times
// while it saves a checkpoint of two or three ConfigMaps a second and
// more, and starts a new process each time, as the Deployment would. The
// process reaches kube-apiserver through a proxy that kills it at a chosen
// write of a save — after the announcement, after part 1, 2 or 3 of the new
// generation was applied or before it was sent, before the commit (every
// part written, the switch not), after the commit was applied but before
// the process learned it — and twice at a random moment. After every kill
// the first ConfigMap still names the previous checkpoint (or, after the
// commit, the new one), the meter's own store reads it (the parts the first
// ConfigMap names add up to its checksum), it is no older than
// the one before, and the new process resumes from it, becomes ready and
// catches up: it never fails "reading the metering checkpoint". At the end
// the records of all the processes together hold every window of every
// namespace exactly once by id (a window delivered again is identical), and
// each window counts the namespace's pods, CPU requests and claims for
// exactly the window (within 2 %): nothing lost, nothing doubled.
var _ = Describe("A meter SIGKILLed at every write of a checkpoint save", Serial, func() {
	It("always leaves a checkpoint its successor resumes from, and every window of every namespace is counted exactly once", func() {
		startAfresh()
		grantClaimMetering()
		began := time.Now()
		namespaces := createMeteredNamespaces(killNamespaces, killClaims)
		framework.Logf("%d namespaces with %d pods and %d Bound claims made in %.1f s", len(namespaces),
			sumOf(namespaces, func(n meteredNamespace) int { return n.pods }), sumOf(namespaces, func(n meteredNamespace) int { return n.claims }),
			time.Since(began).Seconds())

		trap := startWriteTrap()
		args := []string{"--kubeconfig=" + trap.kubeconfig(), "--metering-interval=" + killInterval.String(),
			"--metering-window=" + killWindow.String(), "--metering-resources=pods,persistentvolumeclaims"}
		current := startReplica("metering", "metering-0", args...)
		replicas := make([]*replica, 0, 1+len(killPlan))
		replicas = append(replicas, current)
		expectResumedOrStarted(current, false)
		waitCaughtUp(current)
		// The checkpoint spans several ConfigMaps before the first kill, even
		// with no window pending.
		Expect(strconv.Atoi(checkpointHead(Default).Data[headPartsKey])).To(BeNumerically(">=", 2), "parts of the checkpoint")
		firstKill := time.Now()

		var lastPass time.Time
		for i, point := range killPlan {
			how := kill(trap, current, point)
			head := checkpointHead(Default)
			inFlight := head.Data[headWritingKey] != ""
			// The killed process left a checkpoint the meter's own store reads
			// (the parts the first ConfigMap names add up to its checksum), no
			// older than the last one.
			cp, err := (&checkpoint.ConfigMapStore{Reader: fw.Client, Namespace: releaseNamespace, Name: checkpoint.DefaultName,
				MaxParts: checkpoint.DefaultParts}).Load(context.Background())
			Expect(err).NotTo(HaveOccurred(), "the checkpoint left by a process killed %s", point)
			Expect(cp).NotTo(BeNil())
			Expect(cp.LastPass).NotTo(BeTemporally("<", lastPass), "the checkpoint went back in time")
			// It is the checkpoint the first ConfigMap's last commit described.
			Expect(cp.LastPass.Format("2006-01-02T15:04:05.000Z07:00")).To(Equal(head.Data[headLastPassKey]), "the last pass of the checkpoint read")
			lastPass = cp.LastPass
			if !point.random {
				// Only a kill after the commit was applied leaves the new
				// checkpoint; any other leaves the save in flight.
				Expect(inFlight).To(Equal(point.write != commit || !point.after), "a save in flight after the kill %s", point)
			}
			state := "committed"
			if inFlight {
				state = "save in flight (generation " + head.Data[headWritingKey][:1] + "), the previous checkpoint stands"
			}
			framework.Logf("kill %d %s (%s): %s, %s parts, last pass %s, %d open and %d pending windows", i+1, point, how, state,
				head.Data[headPartsKey], cp.LastPass.Format("15:04:05.000"), len(cp.Open), len(cp.Pending))

			// The Deployment starts a new Pod. The killed process cannot
			// renew its Lease: delete it rather than wait out its 15 s, which
			// the failover tests measure; this test is about the checkpoint.
			deleteMeteringLease()
			current = startReplica("metering", fmt.Sprintf("metering-%d", i+1), args...)
			replicas = append(replicas, current)
			expectResumedOrStarted(current, true)
			waitCaughtUp(current)
		}
		lastRestart := time.Now()

		// The last process delivers two windows that start after it resumed.
		for _, ns := range []meteredNamespace{namespaces[0], namespaces[len(namespaces)-1]} {
			waitForWindow(ns.name, lastRestart.Add(killWindow), func() []string { return stdouts(current) })
		}
		Expect(current.Stop()).To(Succeed())
		for _, r := range replicas {
			log, err := os.ReadFile(r.log)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(log)).NotTo(ContainSubstring("reading the metering checkpoint"), "%s could not read the checkpoint", r)
			Expect(string(log)).NotTo(ContainSubstring("Metering stops"), "%s stopped metering", r)
		}

		windows, duplicates := expectEveryWindowCounted(namespaces, firstKill, lastRestart, stdouts(replicas...)...)
		framework.Logf("%d processes: %d windows of each of %d namespaces, none missing or doubled, "+
			"%d identical records delivered again; %.1f s in all",
			len(replicas), windows, len(namespaces), duplicates, time.Since(began).Seconds())
	})
})

// grantClaimMetering lets the metering ServiceAccount list claims, as the
// chart's metering.persistentVolumeClaims.enabled does, until the test
// ends.
func grantClaimMetering() {
	GinkgoHelper()
	GinkgoHelper()
	ctx := context.Background()
	const name = "meshstack-faults-metering-storage"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: releaseNamespace, Name: meteringAccount}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	Expect(fw.Client.Create(ctx, role)).To(Succeed())
	Expect(fw.Client.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func() {
		_ = fw.Client.Delete(ctx, binding)
		_ = fw.Client.Delete(ctx, role)
	})
}

// createMeteredNamespaces makes n namespaces, each with 1–3 pods Running
// for an hour that request 250m–1 CPU, and claims Bound claims of 1 GiB,
// each of a storage class of its own with a random 253-character name.
func createMeteredNamespaces(n, claims int) []meteredNamespace {
	GinkgoHelper()
	ctx := context.Background()
	run := randomName(5)
	namespaces := make([]meteredNamespace, n)
	for i := range namespaces {
		namespaces[i] = meteredNamespace{name: fmt.Sprintf("ckill-%s-%02d", run, i), pods: 1 + i%3, claims: claims,
			cpuPerPod: 0.25 * float64(1+i%4)}
		Expect(fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaces[i].name}})).To(Succeed())
	}
	inParallel(n*3, func(k int) error {
		ns := namespaces[k/3]
		if k%3 >= ns.pods {
			return nil
		}
		return createRunningPod(ctx, ns.name, fmt.Sprintf("steady-%d", k%3), ns.cpuPerPod)
	})
	inParallel(n*claims, func(k int) error {
		return createBoundClaim(ctx, namespaces[k/claims].name, fmt.Sprintf("claim-%d", k%claims), randomName(253))
	})
	created := time.Now()
	for i := range namespaces {
		namespaces[i].claimsCreated = created
	}
	return namespaces
}

// createRunningPod creates a pod and sets it Running since an hour ago
// (envtest runs no kubelet).
func createRunningPod(ctx context.Context, namespace, name string, cpu float64) error {
	pod := framework.Pod(namespace, name, corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(int64(cpu*1000), resource.DecimalSI)}})
	return framework.CreateRunningPod(ctx, fw.Client, pod, time.Now().Add(-time.Hour))
}

// createBoundClaim creates a claim of 1 GiB of the class and sets it
// Bound (envtest runs no volume controller).
func createBoundClaim(ctx context.Context, namespace, name, class string) error {
	size := *resource.NewQuantity(claimBytes, resource.BinarySI)
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if err := fw.Client.Create(ctx, claim); err != nil {
		return err
	}
	claim.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: size}}
	return fw.Client.Status().Update(ctx, claim)
}

// inParallel calls do for 0 … n-1 with 16 goroutines.
func inParallel(n int, do func(int) error) {
	GinkgoHelper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
				if err := do(k); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

// randomName is n random lowercase letters and digits: a DNS subdomain (a
// letter first) that gzip cannot shorten much.
func randomName(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		if i == 0 {
			b[i] = letters[rand.IntN(26)]
		} else {
			b[i] = letters[rand.IntN(len(letters))]
		}
	}
	return string(b)
}

func sumOf(namespaces []meteredNamespace, f func(meteredNamespace) int) int {
	total := 0
	for _, n := range namespaces {
		total += f(n)
	}
	return total
}

// checkpointHead is the checkpoint's first ConfigMap.
func checkpointHead(g Gomega) *corev1.ConfigMap {
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: releaseNamespace, Name: checkpoint.DefaultName}
	g.Expect(fw.Client.Get(context.Background(), key, &cm)).To(Succeed())
	return &cm
}

func deleteMeteringLease() {
	GinkgoHelper()
	l := lease(Default, "metering")
	Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), l))).To(Succeed())
}

// expectResumedOrStarted waits until the process leads, has read the
// checkpoint (resumed from it, where resumed), is ready, and has run a
// pass; it gives up at once when the process exits or fails to read the
// checkpoint.
func expectResumedOrStarted(r *replica, resumed bool) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		data, _ := os.ReadFile(r.log)
		log := string(data)
		if exited, err := r.Exited(); exited {
			StopTrying(fmt.Sprintf("%s exited (%v)", r, err)).Now()
		}
		if strings.Contains(log, "reading the metering checkpoint") {
			StopTrying(fmt.Sprintf("%s cannot read the checkpoint", r)).Now()
		}
		if resumed {
			g.Expect(log).To(ContainSubstring("Metering: resuming from the checkpoint"))
		}
		g.Expect(r.ready()).To(BeTrue(), "%s is ready", r)
	}).Should(Succeed())
}

// waitCaughtUp waits until the process has committed the checkpoint of a
// pass it made, with no closed window pending: it has delivered the windows
// that closed while no process metered.
func waitCaughtUp(r *replica) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		if exited, err := r.Exited(); exited {
			StopTrying(fmt.Sprintf("%s exited (%v)", r, err)).Now()
		}
		head := checkpointHead(g)
		g.Expect(head.Data[headWritingKey]).To(BeEmpty(), "a save in flight")
		g.Expect(head.Data[headPendingKey]).To(Equal("0"), "pending windows")
		last, err := time.Parse(time.RFC3339Nano, head.Data[headLastPassKey])
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(last).To(BeTemporally(">", r.started), "the last pass in the checkpoint")
	}, framework.SlowTimeout).Should(Succeed(), "%s catches up", r)
}

// kill SIGKILLs the process at the point, through the trap, and says how.
func kill(trap *writeTrap, r *replica, point killPoint) string {
	GinkgoHelper()
	if point.random {
		delay := rand.N(2 * killInterval)
		select {
		case <-time.After(delay):
		case <-r.Done():
		}
		Expect(r.running()).To(BeTrue(), "%s exited before it was killed", r)
		r.Kill()
		return fmt.Sprintf("%d ms after it caught up", delay.Milliseconds())
	}
	trap.arm(r, point.write, point.after)
	select {
	case how := <-trap.killed:
		return how
	case <-r.Done():
		// The trap kills, then says so.
		select {
		case how := <-trap.killed:
			return how
		case <-time.After(5 * time.Second):
		}
		trap.disarm()
		Expect(r.running()).To(BeTrue(), "%s exited before it was killed %s", r, point)
	case <-time.After(framework.Timeout):
		trap.disarm()
		Fail(fmt.Sprintf("no save of %s reached the point %s within %s", r, point, framework.Timeout))
	}
	return ""
}

// expectEveryWindowCounted checks the records of all outputs together:
// records with the same id are identical, every namespace has the same
// windows, without a gap, from before from to after to, and each window
// counts the namespace's pods, their CPU requests and (once all were
// created) its claims for the whole window, within 2 %. It returns the
// number of windows and of identical duplicates.
func expectEveryWindowCounted(namespaces []meteredNamespace, from, to time.Time, outputs ...string) (windows, duplicates int) {
	GinkgoHelper()
	all, err := framework.ReadRecordFiles(outputs...)
	Expect(err).NotTo(HaveOccurred())
	unique, duplicates, err := framework.Deduplicate(all)
	Expect(err).NotTo(HaveOccurred(), "a record delivered twice is identical")
	seconds := killWindow.Seconds()
	var first, last time.Time
	for _, ns := range namespaces {
		records := framework.RecordsIn(unique, ns.name)
		Expect(framework.CheckContiguous(records, killWindow)).To(Succeed(), "every window of %s once", ns.name)
		if first.IsZero() {
			first, last = records[0].WindowStart, records[len(records)-1].WindowStart
			Expect(first).To(BeTemporally("<", from))
			Expect(last).To(BeTemporally(">", to))
		}
		Expect(records[0].WindowStart).To(Equal(first), "the first window of %s", ns.name)
		Expect(records[len(records)-1].WindowStart).To(Equal(last), "the last window of %s", ns.name)
		for _, r := range records {
			pods := seconds * float64(ns.pods)
			Expect(r.PodSeconds).To(BeNumerically("~", pods, 0.02*pods), "pod-seconds of %s in window %s", ns.name, r.WindowStart)
			cpu := pods * ns.cpuPerPod
			Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", cpu, 0.02*cpu), "core-seconds of %s in window %s", ns.name, r.WindowStart)
			if !r.WindowStart.Before(ns.claimsCreated) {
				storage := seconds * float64(ns.claims) * claimBytes
				Expect(r.StorageByteSeconds).To(BeNumerically("~", storage, 0.02*storage), "byte-seconds of %s in window %s", ns.name, r.WindowStart)
				Expect(r.StorageByteSecondsByClass).To(HaveLen(ns.claims), "storage classes of %s in window %s", ns.name, r.WindowStart)
			}
		}
		windows = len(records)
	}
	return windows, duplicates
}
