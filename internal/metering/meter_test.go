package metering

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"
	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// scenario is a cluster whose pods change over time, metered by processes
// that a test starts and stops at will, on a fake clock, with a checkpoint
// they share (nil for none).
type scenario struct {
	t          *testing.T
	clock      *clocktesting.FakeClock
	pods       *fakePods
	podsAt     func(time.Time) []*corev1.Pod
	output     string
	stdout     bytes.Buffer
	logs       meteringtest.Log
	checkpoint *memoryCheckpoints
	resources  []string
}

const testInterval = time.Minute

func newScenario(t *testing.T, output string) *scenario {
	s := &scenario{t: t, clock: clocktesting.NewFakeClock(t0.Add(30 * time.Second)), pods: &fakePods{}, output: output,
		checkpoint: &memoryCheckpoints{}, resources: []string{ResourcePods}}
	// A web pod runs all along; a batch job runs 10:05 to 10:20 in another
	// namespace; a pod starts at 10:40 and runs on.
	s.podsAt = func(at time.Time) []*corev1.Pod {
		pods := []*corev1.Pod{
			newPod("acme-shop", "web", startedAt(t0.Add(-time.Hour)), resources("500m", "1Gi", "1", "2Gi")),
			newPod("acme-shop", "late", startedAt(t0.Add(40*time.Minute)), resources("2", "", "", ""),
				func(p *corev1.Pod) {
					if at.Before(t0.Add(40 * time.Minute)) {
						p.Status.Phase = corev1.PodPending
					}
				}),
		}
		if !at.Before(t0.Add(5*time.Minute)) && at.Before(t0.Add(20*time.Minute)) {
			pods = append(pods, newPod("globex-batch", "job", startedAt(t0.Add(5*time.Minute)), resources("4", "8Gi", "", "")))
		}
		return pods
	}
	return s
}

func (s *scenario) meter() *Meter {
	m := &Meter{
		Reader: s.pods, Interval: testInterval, Window: time.Hour, PageSize: 2, Resources: s.resources,
		Output: s.output, Stdout: &s.stdout, Clock: s.clock, Log: s.logs.Logger(),
	}
	if s.checkpoint != nil {
		m.Checkpoint = s.checkpoint.handle()
	}
	return m
}

// start opens a new metering process at the current time.
func (s *scenario) start() *run {
	s.t.Helper()
	r, err := s.meter().open(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// passOnce makes r pass now, without delivering.
func (s *scenario) passOnce(r *run) {
	s.t.Helper()
	s.pods.set(s.podsAt(s.clock.Now())...)
	if err := r.pass(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// deliver delivers what r may deliver, as Start's loop does.
func (s *scenario) deliver(r *run) {
	s.t.Helper()
	for r.fixed > 0 {
		w := r.pending[0]
		err := r.out.Deliver(context.Background(), usage.WindowRecords(r.Cluster, w.Start, w.End, w.Usage))
		if err := r.markDelivered(context.Background(), deliveryResult{window: w, err: err}); err != nil {
			s.t.Fatal(err)
		}
	}
}

// runUntil makes r pass and deliver now and then every interval up to
// until, and leaves the clock one interval after the last pass.
func (s *scenario) runUntil(r *run, until time.Time) {
	s.t.Helper()
	for ; !s.clock.Now().After(until); s.clock.Step(testInterval) {
		s.passOnce(r)
		s.deliver(r)
	}
}

// deliverFirstWindowAndCrash runs r until the first window closes, delivers
// it and stops before it saves that it did.
func (s *scenario) deliverFirstWindowAndCrash(r *run) {
	s.t.Helper()
	s.runUntil(r, t0.Add(59*time.Minute+30*time.Second))
	s.passOnce(r)
	w := r.pending[0]
	if err := r.out.Deliver(context.Background(), usage.WindowRecords(r.Cluster, w.Start, w.End, w.Usage)); err != nil {
		s.t.Fatal(err)
	}
	s.clock.Step(testInterval)
}

func (s *scenario) stop(r *run) {
	if err := r.out.Close(); err != nil {
		s.t.Fatal(err)
	}
}

func readRecords(t *testing.T, data []byte) []usage.Record {
	t.Helper()
	var records []usage.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r usage.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		records = append(records, r)
	}
	return records
}

// records are the records the scenario's processes emitted.
func (s *scenario) records() []usage.Record {
	s.t.Helper()
	if s.output == sink.StdoutOutput {
		return readRecords(s.t, s.stdout.Bytes())
	}
	data, err := os.ReadFile(s.output)
	if err != nil {
		s.t.Fatal(err)
	}
	return readRecords(s.t, data)
}

// uninterrupted is what one process that never stops emits.
func uninterrupted(t *testing.T, until time.Time) []usage.Record {
	s := newScenario(t, sink.StdoutOutput)
	r := s.start()
	s.runUntil(r, until)
	s.stop(r)
	return s.records()
}

// deduplicated drops records whose id came before, failing the test if a
// duplicate differs from the first record with its id.
func deduplicated(t *testing.T, records []usage.Record) []usage.Record {
	t.Helper()
	seen := map[string]usage.Record{}
	var out []usage.Record
	for _, r := range records {
		if first, ok := seen[r.ID]; ok {
			if diff := cmp.Diff(first, r); diff != "" {
				t.Errorf("record %s delivered twice with different content (-first +again):\n%s", r.ID, diff)
			}
			continue
		}
		seen[r.ID] = r
		out = append(out, r)
	}
	return out
}

func TestMeterRestartsLoseNothing(t *testing.T) {
	end := t0.Add(3*time.Hour + 30*time.Second)
	want := uninterrupted(t, end)
	if len(want) != 4 { // two namespaces in the first window, one in each of the two others
		t.Fatalf("reference run wrote %d records: %+v", len(want), want)
	}

	t.Run("restarts in the middle of a window and right after one closed give the same records", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		for _, stop := range []time.Time{t0.Add(30*time.Minute + 30*time.Second), t0.Add(time.Hour + 30*time.Second), end} {
			r := s.start()
			s.runUntil(r, stop)
			s.stop(r)
		}
		if diff := cmp.Diff(want, s.records()); diff != "" {
			t.Errorf("records (-uninterrupted +restarted):\n%s", diff)
		}
		if !s.logs.Contains("resuming from the checkpoint") {
			t.Errorf("log does not say where it resumed: %v", s.logs.Lines())
		}
	})

	t.Run("a crash after a window was fixed and before it was delivered: the next process delivers the same records", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		r := s.start()
		s.runUntil(r, t0.Add(59*time.Minute+30*time.Second))
		s.passOnce(r) // 11:00:30 closes the first window and fixes it, then the process dies
		s.clock.Step(testInterval)
		if got := len(s.records()); got != 0 {
			t.Fatalf("%d records before any delivery", got)
		}
		r = s.start()
		if len(r.pending) != 1 {
			t.Fatalf("the new process found %d pending windows, want 1", len(r.pending))
		}
		s.runUntil(r, end)
		if diff := cmp.Diff(want, s.records()); diff != "" {
			t.Errorf("records (-uninterrupted +crashed before delivery):\n%s", diff)
		}
	})

	t.Run("a crash after delivering and before marking it: an identical duplicate", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		r := s.start()
		s.deliverFirstWindowAndCrash(r)
		r = s.start()
		s.runUntil(r, end)
		got := s.records()
		if len(got) != len(want)+2 {
			t.Errorf("got %d records, want the %d of an uninterrupted run plus the first window's 2 again", len(got), len(want))
		}
		if diff := cmp.Diff(want, deduplicated(t, got)); diff != "" {
			t.Errorf("records by id (-uninterrupted +crashed after delivery):\n%s", diff)
		}
	})

	t.Run("windows that closed while nothing ran are delivered on start, counting pods that ran through", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		r := s.start()
		s.runUntil(r, t0.Add(30*time.Minute+30*time.Second))
		s.stop(r)
		s.clock.SetTime(t0.Add(2*time.Hour + 10*time.Minute + 30*time.Second)) // down for 100 minutes
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		// The batch job ended at 10:20 while the first process still ran:
		// it is counted in full.
		if diff := cmp.Diff(want, s.records(), cmpopts.IgnoreFields(usage.Usage{}, "Samples")); diff != "" {
			t.Errorf("records (-uninterrupted +down for 100 minutes):\n%s", diff)
		}
	})
}

func TestMeterFencing(t *testing.T) {
	t.Run("of two processes started from the same checkpoint, the second to save stops before it delivers", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		r := s.start()
		s.runUntil(r, t0.Add(59*time.Minute+30*time.Second))
		first, second := s.start(), s.start()
		s.passOnce(first) // 11:00:30: fixes the first window
		s.deliver(first)
		delivered := s.stdout.Len()
		s.pods.set(s.podsAt(s.clock.Now())...)
		err := second.pass(context.Background())
		if !errors.Is(err, checkpoint.ErrFenced) {
			t.Fatalf("the second process's pass returned %v, want ErrFenced", err)
		}
		if second.fixed != 0 || s.stdout.Len() != delivered {
			t.Errorf("the fenced process may deliver %d windows and wrote %d bytes", second.fixed, s.stdout.Len()-delivered)
		}
	})

	t.Run("a deposed leader's first save fails, before it delivers anything new", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		old := s.start()
		s.runUntil(old, t0.Add(50*time.Minute+30*time.Second))
		leader := s.start() // the old leader is paused, a new one takes over
		s.runUntil(leader, t0.Add(time.Hour+30*time.Second))
		before := s.stdout.Len()
		s.clock.Step(testInterval)
		s.pods.set(s.podsAt(s.clock.Now())...)
		if err := old.pass(context.Background()); !errors.Is(err, checkpoint.ErrFenced) {
			t.Fatalf("the deposed leader's pass returned %v, want ErrFenced", err)
		}
		if old.fixed != 0 || s.stdout.Len() != before {
			t.Errorf("the deposed leader may deliver %d windows and wrote %d bytes", old.fixed, s.stdout.Len()-before)
		}
	})

	t.Run("Start stops with the fencing error", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		s.pods.set(s.podsAt(s.clock.Now())...)
		m := s.meter()
		m.Checkpoint = &saveBeforeFirstSave{Store: m.Checkpoint, other: s.checkpoint.handle()}
		err := m.Start(context.Background())
		if !errors.Is(err, checkpoint.ErrFenced) {
			t.Fatalf("Start returned %v, want ErrFenced", err)
		}
		if !s.logs.Contains("no longer the leader") {
			t.Errorf("no clear log line: %v", s.logs.Lines())
		}
	})
}

// saveBeforeFirstSave lets another process save the checkpoint between this
// process's Load and its first Save.
type saveBeforeFirstSave struct {
	checkpoint.Store
	other *memoryCheckpoint
	done  bool
}

func (s *saveBeforeFirstSave) Save(ctx context.Context, cp *checkpoint.Checkpoint) error {
	if !s.done {
		s.done = true
		if _, err := s.other.Load(ctx); err != nil {
			return err
		}
		if err := s.other.Save(ctx, cp); err != nil {
			return err
		}
	}
	return s.Store.Save(ctx, cp)
}

func TestMeterFileOutput(t *testing.T) {
	end := t0.Add(3*time.Hour + 30*time.Second)
	want := uninterrupted(t, end)

	t.Run("a crash while a window is written: the torn tail is cut and the window delivered again", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		r := s.start()
		s.deliverFirstWindowAndCrash(r)
		s.stop(r)
		// Tear the write: keep the first of its two records, cut into the
		// second.
		data, _ := os.ReadFile(s.output)
		if err := os.WriteFile(s.output, data[:len(data)-20], 0o600); err != nil {
			t.Fatal(err)
		}
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		if diff := cmp.Diff(want, s.records()); diff != "" {
			t.Errorf("records (-uninterrupted +torn and resumed):\n%s", diff)
		}
		if !s.logs.Contains("torn write") {
			t.Errorf("log does not report the repair: %v", s.logs.Lines())
		}
	})

	t.Run("a window the file already holds is not written again", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		r := s.start()
		s.deliverFirstWindowAndCrash(r)
		s.stop(r)
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		if diff := cmp.Diff(want, s.records()); diff != "" {
			t.Errorf("records (-uninterrupted +crashed after writing):\n%s", diff)
		}
	})

	t.Run("without a checkpoint a file resumes after its last window", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		s.checkpoint = nil
		r := s.start()
		s.runUntil(r, t0.Add(30*time.Minute+30*time.Second))
		s.runUntil(r, t0.Add(time.Hour+30*time.Second))
		s.stop(r)
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		if diff := cmp.Diff(want, s.records(), cmpopts.IgnoreFields(usage.Usage{}, "Samples")); diff != "" {
			t.Errorf("records (-uninterrupted +restarted without checkpoint):\n%s", diff)
		}
		if !s.logs.Contains("metering without a checkpoint") {
			t.Errorf("no warning about running without a checkpoint: %v", s.logs.Lines())
		}
	})
}

func TestMeterStdoutWithoutCheckpoint(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	s.checkpoint = nil
	s.clock.SetTime(t0.Add(10*time.Minute + 30*time.Second))
	r := s.start()
	s.runUntil(r, t0.Add(time.Hour+30*time.Second))
	s.stop(r)
	got := s.records()
	// Started at 10:10:30 with no checkpoint: counts from 10:00, so the web
	// pod, which ran through, is exact, and the batch job counts from its
	// start at 10:05 to the last pass that saw it, 10:19:30.
	want := []usage.Usage{*plus(usageOf(3600, 0.5, gi, 1, 2*gi, 51), usageOf(20*60, 2, 0, 0, 0, 21)), *usageOf(14*60+30, 4, 8*gi, 0, 0, 10)}
	gotUsage := make([]usage.Usage, 0, len(got))
	for _, r := range got {
		gotUsage = append(gotUsage, r.Usage)
	}
	if diff := cmp.Diff(want, gotUsage, cmpopts.EquateApprox(1e-12, 1e-6)); diff != "" {
		t.Errorf("records on stdout (-want +got):\n%s", diff)
	}
	if !s.logs.Contains("metering without a checkpoint") {
		t.Errorf("log does not warn: %v", s.logs.Lines())
	}
}

func TestMeterWindowChange(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	r := s.start()
	s.runUntil(r, t0.Add(time.Hour+10*time.Minute+30*time.Second))
	s.stop(r)
	m := s.meter()
	m.Window = 30 * time.Minute
	r, err := m.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.agg.Last(), t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("counting resumes at %s, want the start of the open window %s", got, want)
	}
	if !s.logs.Contains("written for another --metering-window") {
		t.Errorf("no warning: %v", s.logs.Lines())
	}
}

func TestMeterListErrorDiscardsThePass(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	before := testutil.ToFloat64(listErrors)
	r := s.start()
	s.runUntil(r, t0.Add(10*time.Minute+30*time.Second))
	// The second page of the next pass fails: that pass must count nothing,
	// or the pods on its first page would count twice.
	s.pods.failPage = map[int]error{1: errors.New("etcd is having a bad day")}
	s.runUntil(r, t0.Add(time.Hour+30*time.Second))
	s.stop(r)
	if got := testutil.ToFloat64(listErrors) - before; got != 1 {
		t.Errorf("list errors went up by %v, want 1", got)
	}
	if !s.logs.Contains("Listing failed") {
		t.Errorf("list error not logged: %v", s.logs.Lines())
	}
	want := uninterrupted(t, t0.Add(time.Hour+30*time.Second))
	if diff := cmp.Diff(want, s.records(), cmpopts.IgnoreFields(usage.Usage{}, "Samples")); diff != "" {
		t.Errorf("records (-uninterrupted +with a failed pass):\n%s", diff)
	}
	for _, limit := range s.pods.limits {
		if limit != 2 {
			t.Fatalf("listed with limit %d, want the page size 2", limit)
		}
	}
}

func TestMeterExpiredContinueTokenListsAgain(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	r := s.start()
	s.runUntil(r, t0.Add(10*time.Minute+30*time.Second))
	// The continue token of the second page of the next pass expires: the
	// pass lists again from the start and counts each pod once.
	s.pods.expirePage = map[int]bool{1: true}
	s.runUntil(r, t0.Add(time.Hour+30*time.Second))
	s.stop(r)
	if len(s.pods.expirePage) != 0 {
		t.Fatal("the token never expired: the test proves nothing")
	}
	want := uninterrupted(t, t0.Add(time.Hour+30*time.Second))
	if diff := cmp.Diff(want, s.records()); diff != "" {
		t.Errorf("records (-uninterrupted +with an expired token):\n%s", diff)
	}
	if !s.logs.Contains("continue token expired") {
		t.Errorf("expiry not logged: %v", s.logs.Lines())
	}
}

func TestMeterClaims(t *testing.T) {
	fast := "fast"
	bound := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "acme-shop", Name: "data", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec:       corev1.PersistentVolumeClaimSpec{StorageClassName: &fast},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse("10Gi")}},
	}
	onlyStorage := bound.DeepCopy()
	onlyStorage.Namespace = "initech-archive"

	t.Run("claims count per storage class, also in namespaces without pods", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		s.resources = []string{ResourcePods, ResourcePersistentVolumeClaims}
		s.pods.claims = []*corev1.PersistentVolumeClaim{bound, onlyStorage}
		r := s.start()
		s.runUntil(r, t0.Add(time.Hour+30*time.Second))
		got := map[string]usage.Usage{}
		for _, rec := range s.records() {
			got[rec.Namespace] = rec.Usage
		}
		want := float64(3600 * 10 * gi)
		for _, ns := range []string{"acme-shop", "initech-archive"} {
			if got[ns].StorageByteSeconds != want || got[ns].StorageByteSecondsByClass["fast"] != want {
				t.Errorf("%s: storage %v by class %v, want %v of class fast", ns, got[ns].StorageByteSeconds, got[ns].StorageByteSecondsByClass, want)
			}
		}
		if got["acme-shop"].PodSeconds == 0 || got["initech-archive"].PodSeconds != 0 {
			t.Errorf("pod seconds changed meaning: %+v", got)
		}
	})

	t.Run("without the right to list claims it logs a clear error and meters pods", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		s.resources = []string{ResourcePods, ResourcePersistentVolumeClaims}
		s.pods.claimsErr = apierrors.NewForbidden(corev1.Resource("persistentvolumeclaims"), "", errors.New("no RBAC policy matched"))
		r := s.start()
		s.runUntil(r, t0.Add(time.Hour+30*time.Second))
		want := uninterrupted(t, t0.Add(time.Hour+30*time.Second))
		if diff := cmp.Diff(want, s.records()); diff != "" {
			t.Errorf("records (-pods only +claims forbidden):\n%s", diff)
		}
		if n := s.logs.Count("Metering PersistentVolumeClaims is not permitted"); n != 1 {
			t.Errorf("the error was logged %d times, want once: %v", n, s.logs.Lines())
		}
	})
}

func TestMeterStartRunsOnItsTicker(t *testing.T) {
	s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
	s.pods.set(s.podsAt(t0)...)
	m := s.meter()
	m.Cluster = "eu-1"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, _ := os.ReadFile(s.output); len(data) > 0 && testutil.ToFloat64(pendingWindows) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no window written")
		}
		if s.clock.HasWaiters() {
			s.clock.Step(testInterval)
		}
		time.Sleep(time.Millisecond) // yield to the meter's goroutines; the fake clock sets the pace
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	records := s.records()
	if len(records) != 1 || records[0].Namespace != "acme-shop" || records[0].PodSeconds < 3600 {
		t.Errorf("records: %+v", records)
	}
	// The delivered records name the cluster and carry its id.
	if r := records[0]; r.Cluster != "eu-1" || r.ID != usage.RecordID("eu-1", "acme-shop", t0, t0.Add(time.Hour)) {
		t.Errorf("record of cluster eu-1: cluster %q, id %q", r.Cluster, r.ID)
	}
	if testutil.ToFloat64(lastSuccessTimestamp) == 0 || testutil.ToFloat64(recordsEmitted) == 0 {
		t.Errorf("metrics not updated")
	}
	cp, err := s.checkpoint.handle().Load(context.Background())
	if err != nil || cp == nil || !cp.Delivered.Equal(t0.Add(time.Hour)) || len(cp.Pending) != 0 {
		t.Errorf("checkpoint after delivery: %+v, %v", cp, err)
	}
}

// An HTTP output without --metering-cluster starts with a warning; with
// one, or with another output, it does not. A cluster that is no DNS label
// is refused.
func TestMeterClusterWarningAndValidation(t *testing.T) {
	for _, tt := range []struct {
		output, cluster string
		warns           bool
	}{
		{"http://127.0.0.1:1/usage", "", true},
		{"http://127.0.0.1:1/usage", "eu-1", false},
		{sink.StdoutOutput, "", false},
	} {
		s := newScenario(t, tt.output)
		m := s.meter()
		m.Cluster = tt.cluster
		r, err := m.open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.stop(r)
		if got := s.logs.Contains("no --metering-cluster"); got != tt.warns {
			t.Errorf("output %s, cluster %q: warns %v, want %v: %v", tt.output, tt.cluster, got, tt.warns, s.logs.Lines())
		}
	}
	m := newScenario(t, sink.StdoutOutput).meter()
	m.Cluster = "EU/1"
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "--metering-cluster") {
		t.Errorf("Validate with cluster %q = %v, want a refusal", m.Cluster, err)
	}
}

func TestValidateSettings(t *testing.T) {
	tests := []struct {
		interval, window time.Duration
		pageSize         int64
		output           string
		wantErr          string
	}{
		{time.Minute, time.Hour, 500, "-", ""},
		{200 * time.Millisecond, 2 * time.Second, 1, "/tmp/x", ""},
		{0, time.Hour, 500, "-", "--metering-interval must be positive"},
		{time.Hour, time.Minute, 500, "-", "must be at least --metering-interval"},
		{time.Minute, 7 * time.Minute, 500, "-", "divides 24h"},
		{time.Millisecond, 1500 * time.Millisecond, 500, "-", "whole number of seconds"},
		{time.Minute, time.Hour, 0, "-", "--metering-page-size must be positive"},
		{time.Minute, time.Hour, 500, "", "--metering-output"},
	}
	for _, tt := range tests {
		err := ValidateSettings(tt.interval, tt.window, tt.pageSize, tt.output)
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateSettings(%v, %v, %d, %q) = %v, want %q", tt.interval, tt.window, tt.pageSize, tt.output, err, tt.wantErr)
		}
	}
}
