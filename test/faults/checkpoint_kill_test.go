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
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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
// internal/metering/configmap.go): how many data parts the checkpoint it
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

// TestCheckpointKilledMidSave SIGKILLs the metering process nine times
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
func TestCheckpointKilledMidSave(t *testing.T) {
	g := NewWithT(t)
	startAfresh(g)
	grantClaimMetering(t, g)
	began := time.Now()
	namespaces := createMeteredNamespaces(g, killNamespaces, killClaims)
	t.Logf("%d namespaces with %d pods and %d Bound claims made in %.1f s", len(namespaces),
		sumOf(namespaces, func(n meteredNamespace) int { return n.pods }), sumOf(namespaces, func(n meteredNamespace) int { return n.claims }),
		time.Since(began).Seconds())

	trap := startWriteTrap(t)
	args := []string{"--kubeconfig=" + trap.kubeconfig(t), "--metering-interval=" + killInterval.String(),
		"--metering-window=" + killWindow.String(), "--metering-resources=pods,persistentvolumeclaims"}
	current := startReplica(t, "metering", "metering-0", args...)
	replicas := []*replica{current}
	expectResumedOrStarted(g, current, false)
	waitCaughtUp(g, current)
	// The checkpoint spans several ConfigMaps before the first kill, even
	// with no window pending.
	g.Expect(strconv.Atoi(checkpointHead(g).Data[headPartsKey])).To(BeNumerically(">=", 2), "parts of the checkpoint")
	firstKill := time.Now()

	var lastPass time.Time
	for i, point := range killPlan {
		how := kill(g, trap, current, point)
		head := checkpointHead(g)
		inFlight := head.Data[headWritingKey] != ""
		// The killed process left a checkpoint the meter's own store reads
		// (the parts the first ConfigMap names add up to its checksum), no
		// older than the last one.
		cp, err := (&checkpoint.ConfigMapStore{Reader: fw.Client, Namespace: releaseNamespace, Name: checkpoint.DefaultName,
			MaxParts: checkpoint.DefaultParts}).Load(context.Background())
		g.Expect(err).NotTo(HaveOccurred(), "the checkpoint left by a process killed %s", point)
		g.Expect(cp).NotTo(BeNil())
		g.Expect(cp.LastPass).NotTo(BeTemporally("<", lastPass), "the checkpoint went back in time")
		// It is the checkpoint the first ConfigMap's last commit described.
		g.Expect(cp.LastPass.Format("2006-01-02T15:04:05.000Z07:00")).To(Equal(head.Data[headLastPassKey]), "the last pass of the checkpoint read")
		lastPass = cp.LastPass
		if !point.random {
			// Only a kill after the commit was applied leaves the new
			// checkpoint; any other leaves the save in flight.
			g.Expect(inFlight).To(Equal(point.write != commit || !point.after), "a save in flight after the kill %s", point)
		}
		state := "committed"
		if inFlight {
			state = "save in flight (generation " + head.Data[headWritingKey][:1] + "), the previous checkpoint stands"
		}
		t.Logf("kill %d %s (%s): %s, %s parts, last pass %s, %d open and %d pending windows", i+1, point, how, state,
			head.Data[headPartsKey], cp.LastPass.Format("15:04:05.000"), len(cp.Open), len(cp.Pending))

		// The Deployment starts a new Pod. The killed process cannot
		// renew its Lease: delete it rather than wait out its 15 s, which
		// the failover tests measure; this test is about the checkpoint.
		deleteMeteringLease(g)
		current = startReplica(t, "metering", fmt.Sprintf("metering-%d", i+1), args...)
		replicas = append(replicas, current)
		expectResumedOrStarted(g, current, true)
		waitCaughtUp(g, current)
	}
	lastRestart := time.Now()

	// The last process delivers two windows that start after it resumed.
	for _, ns := range []meteredNamespace{namespaces[0], namespaces[len(namespaces)-1]} {
		waitForWindow(g, 30*time.Second, ns.name, lastRestart.Add(killWindow), func() []string { return stdouts(current) })
	}
	g.Expect(current.Stop()).To(Succeed())
	for _, r := range replicas {
		log, err := os.ReadFile(r.log)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(log)).NotTo(ContainSubstring("reading the metering checkpoint"), "%s could not read the checkpoint", r)
		g.Expect(string(log)).NotTo(ContainSubstring("Metering stops"), "%s stopped metering", r)
	}

	windows, duplicates := expectEveryWindowCounted(g, namespaces, firstKill, lastRestart, stdouts(replicas...)...)
	t.Logf("%d processes: %d windows of each of %d namespaces, none missing or doubled, %d identical records delivered again; %.1f s in all",
		len(replicas), windows, len(namespaces), duplicates, time.Since(began).Seconds())
}

// grantClaimMetering lets the metering ServiceAccount list claims, as the
// chart's metering.persistentVolumeClaims.enabled does, until the test
// ends.
func grantClaimMetering(t *testing.T, g Gomega) {
	ctx := context.Background()
	const name = "meshstack-faults-metering-storage"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: releaseNamespace, Name: meteringAccount}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}
	g.Expect(fw.Client.Create(ctx, role)).To(Succeed())
	g.Expect(fw.Client.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() {
		_ = fw.Client.Delete(ctx, binding)
		_ = fw.Client.Delete(ctx, role)
	})
}

// createMeteredNamespaces makes n namespaces, each with 1–3 pods Running
// for an hour that request 250m–1 CPU, and claims Bound claims of 1 GiB,
// each of a storage class of its own with a random 253-character name.
func createMeteredNamespaces(g Gomega, n, claims int) []meteredNamespace {
	ctx := context.Background()
	run := randomName(5)
	namespaces := make([]meteredNamespace, n)
	for i := range namespaces {
		namespaces[i] = meteredNamespace{name: fmt.Sprintf("ckill-%s-%02d", run, i), pods: 1 + i%3, claims: claims,
			cpuPerPod: 0.25 * float64(1+i%4)}
		g.Expect(fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaces[i].name}})).To(Succeed())
	}
	inParallel(g, n*3, func(k int) error {
		ns := namespaces[k/3]
		if k%3 >= ns.pods {
			return nil
		}
		return createRunningPod(ctx, ns.name, fmt.Sprintf("steady-%d", k%3), ns.cpuPerPod)
	})
	inParallel(g, n*claims, func(k int) error {
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
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(int64(cpu*1000), resource.DecimalSI)}}}},
		},
	}
	if err := fw.Client.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now().Add(-time.Hour)}}
	return fw.Client.Status().Update(ctx, pod)
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
func inParallel(g Gomega, n int, do func(int) error) {
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
		g.Expect(err).NotTo(HaveOccurred())
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
	g.Expect(fw.Client.Get(context.Background(), client.ObjectKey{Namespace: releaseNamespace, Name: checkpoint.DefaultName}, &cm)).To(Succeed())
	return &cm
}

func deleteMeteringLease(g Gomega) {
	l := lease(g, "metering")
	g.Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), l))).To(Succeed())
}

// expectResumedOrStarted waits until the process leads, has read the
// checkpoint (resumed from it, where resumed), is ready, and has run a
// pass; it gives up at once when the process exits or fails to read the
// checkpoint.
func expectResumedOrStarted(g Gomega, r *replica, resumed bool) {
	g.Eventually(func(g Gomega) {
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
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
}

// waitCaughtUp waits until the process has committed the checkpoint of a
// pass it made, with no closed window pending: it has delivered the windows
// that closed while no process metered.
func waitCaughtUp(g Gomega, r *replica) {
	g.Eventually(func(g Gomega) {
		if exited, err := r.Exited(); exited {
			StopTrying(fmt.Sprintf("%s exited (%v)", r, err)).Now()
		}
		head := checkpointHead(g)
		g.Expect(head.Data[headWritingKey]).To(BeEmpty(), "a save in flight")
		g.Expect(head.Data[headPendingKey]).To(Equal("0"), "pending windows")
		last, err := time.Parse(time.RFC3339Nano, head.Data[headLastPassKey])
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(last).To(BeTemporally(">", r.started), "the last pass in the checkpoint")
	}, time.Minute, 50*time.Millisecond).Should(Succeed(), "%s catches up", r)
}

// kill SIGKILLs the process at the point, through the trap, and says how.
func kill(g Gomega, trap *writeTrap, r *replica, point killPoint) string {
	if point.random {
		delay := rand.N(2 * killInterval)
		select {
		case <-time.After(delay):
		case <-r.Done():
		}
		g.Expect(r.running()).To(BeTrue(), "%s exited before it was killed", r)
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
		g.Expect(r.running()).To(BeTrue(), "%s exited before it was killed %s", r, point)
	case <-time.After(30 * time.Second):
		trap.disarm()
		g.Expect(false).To(BeTrue(), "no save of %s reached the point %s within 30 s", r, point)
	}
	return ""
}

// expectEveryWindowCounted checks the records of all outputs together:
// records with the same id are identical, every namespace has the same
// windows, without a gap, from before from to after to, and each window
// counts the namespace's pods, their CPU requests and (once all were
// created) its claims for the whole window, within 2 %. It returns the
// number of windows and of identical duplicates.
func expectEveryWindowCounted(g Gomega, namespaces []meteredNamespace, from, to time.Time, outputs ...string) (windows, duplicates int) {
	all, err := framework.ReadRecordFiles(outputs...)
	g.Expect(err).NotTo(HaveOccurred())
	unique, duplicates, err := framework.Deduplicate(all)
	g.Expect(err).NotTo(HaveOccurred(), "a record delivered twice is identical")
	seconds := killWindow.Seconds()
	var first, last time.Time
	for _, ns := range namespaces {
		records := framework.RecordsIn(unique, ns.name)
		g.Expect(framework.CheckContiguous(records, killWindow)).To(Succeed(), "every window of %s once", ns.name)
		if first.IsZero() {
			first, last = records[0].WindowStart, records[len(records)-1].WindowStart
			g.Expect(first).To(BeTemporally("<", from))
			g.Expect(last).To(BeTemporally(">", to))
		}
		g.Expect(records[0].WindowStart).To(Equal(first), "the first window of %s", ns.name)
		g.Expect(records[len(records)-1].WindowStart).To(Equal(last), "the last window of %s", ns.name)
		for _, r := range records {
			pods := seconds * float64(ns.pods)
			g.Expect(r.PodSeconds).To(BeNumerically("~", pods, 0.02*pods), "pod-seconds of %s in window %s", ns.name, r.WindowStart)
			cpu := pods * ns.cpuPerPod
			g.Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", cpu, 0.02*cpu), "core-seconds of %s in window %s", ns.name, r.WindowStart)
			if !r.WindowStart.Before(ns.claimsCreated) {
				storage := seconds * float64(ns.claims) * claimBytes
				g.Expect(r.StorageByteSeconds).To(BeNumerically("~", storage, 0.02*storage), "byte-seconds of %s in window %s", ns.name, r.WindowStart)
				g.Expect(r.StorageByteSecondsByClass).To(HaveLen(ns.claims), "storage classes of %s in window %s", ns.name, r.WindowStart)
			}
		}
		windows = len(records)
	}
	return windows, duplicates
}
