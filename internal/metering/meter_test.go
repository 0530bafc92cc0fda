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
	clocktesting "k8s.io/utils/clock/testing"
)

// scenario is a cluster whose pods change over time, metered by processes
// that a test starts and stops at will, on a fake clock.
type scenario struct {
	t      *testing.T
	clock  *clocktesting.FakeClock
	pods   *fakePods
	podsAt func(time.Time) []*corev1.Pod
	output string
	stdout bytes.Buffer
	logs   logSink
}

const testInterval = time.Minute

func newScenario(t *testing.T, output string) *scenario {
	s := &scenario{t: t, clock: clocktesting.NewFakeClock(t0.Add(30 * time.Second)), pods: &fakePods{}, output: output}
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
	return &Meter{
		Reader: s.pods, Interval: testInterval, Window: time.Hour, PageSize: 2,
		Output: s.output, Stdout: &s.stdout, Clock: s.clock, Log: s.logs.logger(),
	}
}

// start opens a new metering process at the current time.
func (s *scenario) start() *run {
	s.t.Helper()
	r, err := s.meter().open()
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// runUntil makes r pass now and then every interval up to until, and
// leaves the clock one interval after the last pass.
func (s *scenario) runUntil(r *run, until time.Time) {
	s.t.Helper()
	for ; !s.clock.Now().After(until); s.clock.Step(testInterval) {
		s.pods.set(s.podsAt(s.clock.Now())...)
		if err := r.pass(context.Background()); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *scenario) stop(r *run) {
	if err := r.out.Close(); err != nil {
		s.t.Fatal(err)
	}
}

func readRecords(t *testing.T, data []byte) []Record {
	t.Helper()
	var records []Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		records = append(records, r)
	}
	return records
}

func (s *scenario) fileRecords() []Record {
	s.t.Helper()
	data, err := os.ReadFile(s.output)
	if err != nil {
		s.t.Fatal(err)
	}
	return readRecords(s.t, data)
}

// uninterrupted is what one process that never stops writes.
func uninterrupted(t *testing.T, until time.Time) []Record {
	s := newScenario(t, filepath.Join(t.TempDir(), "reference.jsonl"))
	r := s.start()
	s.runUntil(r, until)
	s.stop(r)
	return s.fileRecords()
}

func TestMeterRestartsResumeWithoutDuplicatesOrGaps(t *testing.T) {
	end := t0.Add(3*time.Hour + 30*time.Second)
	want := uninterrupted(t, end)
	if len(want) != 4 { // two namespaces in the first window, one in each of the two others
		t.Fatalf("reference run wrote %d records: %+v", len(want), want)
	}

	t.Run("restarts in the middle of a window and right after one closed give the same records", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		for _, stop := range []time.Time{t0.Add(30*time.Minute + 30*time.Second), t0.Add(time.Hour + 30*time.Second), end} {
			r := s.start()
			s.runUntil(r, stop)
			s.stop(r)
		}
		if diff := cmp.Diff(want, s.fileRecords()); diff != "" {
			t.Errorf("records (-uninterrupted +restarted):\n%s", diff)
		}
		if !s.logs.contains("resuming from the last pass of the previous process") {
			t.Errorf("log does not say where it resumed: %v", s.logs.lines)
		}
	})

	t.Run("a crash while a window is written loses nothing", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		r := s.start()
		s.runUntil(r, t0.Add(59*time.Minute+30*time.Second))
		state, err := os.ReadFile(statePath(s.output))
		if err != nil {
			t.Fatal(err)
		}
		s.runUntil(r, t0.Add(time.Hour+30*time.Second)) // writes the first window
		s.stop(r)
		// Tear the write: keep the first of its two records, cut into the
		// second, and leave the state file as it was before the pass.
		data, _ := os.ReadFile(s.output)
		if err := os.WriteFile(s.output, data[:len(data)-20], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(statePath(s.output), state, 0o600); err != nil {
			t.Fatal(err)
		}
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		// The new process's first pass covers the time of the pass that
		// crashed, so there is one sample less; the usage is the same.
		if diff := cmp.Diff(want, s.fileRecords(), cmpopts.IgnoreFields(Usage{}, "Samples")); diff != "" {
			t.Errorf("records (-uninterrupted +torn and resumed):\n%s", diff)
		}
		if !s.logs.contains("torn write") || !s.logs.contains(`"recomputedWindowStart"="2026-03-01T10:00:00Z"`) {
			t.Errorf("log does not report the repair: %v", s.logs.lines)
		}
	})

	t.Run("without the state file, pods that ran through the restart still count in full", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		r := s.start()
		s.runUntil(r, t0.Add(30*time.Minute+30*time.Second))
		s.stop(r)
		if err := os.Remove(statePath(s.output)); err != nil {
			t.Fatal(err)
		}
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		// The batch job ended in the open window before the restart: with no
		// state it is lost; everything else is as if nothing happened.
		if diff := cmp.Diff(dropNamespace(want, "globex-batch"), s.fileRecords(), cmpopts.IgnoreFields(Usage{}, "Samples")); diff != "" {
			t.Errorf("records (-uninterrupted +restarted without state):\n%s", diff)
		}
	})

	t.Run("windows that closed while nothing ran are written on start, counting pods that ran through", func(t *testing.T) {
		s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
		r := s.start()
		s.runUntil(r, t0.Add(30*time.Minute+30*time.Second))
		s.stop(r)
		s.clock.SetTime(t0.Add(2*time.Hour + 10*time.Minute + 30*time.Second)) // down for 100 minutes
		r = s.start()
		s.runUntil(r, end)
		s.stop(r)
		if diff := cmp.Diff(want, s.fileRecords(), cmpopts.IgnoreFields(Usage{}, "Samples")); diff != "" {
			t.Errorf("records (-uninterrupted +down for 100 minutes):\n%s", diff)
		}
	})
}

func dropNamespace(records []Record, ns string) []Record {
	var out []Record
	perWindow := map[time.Time]int{}
	for _, r := range records {
		if r.Namespace != ns {
			out = append(out, r)
			perWindow[r.WindowStart]++
		}
	}
	for i := range out {
		out[i].WindowRecords = perWindow[out[i].WindowStart]
	}
	return out
}

func TestMeterStdout(t *testing.T) {
	s := newScenario(t, StdoutOutput)
	s.clock.SetTime(t0.Add(10*time.Minute + 30*time.Second))
	r := s.start()
	s.runUntil(r, t0.Add(time.Hour+30*time.Second))
	s.stop(r)
	got := readRecords(t, s.stdout.Bytes())
	// Started at 10:10:30 with no checkpoint: counts from 10:00, so the web
	// pod, which ran through, is exact, and the batch job counts from its
	// start at 10:05 to the last pass that saw it, 10:19:30.
	want := []Usage{*usage(3600, 0.5, gi, 1, 2*gi, 51), *usage(14*60+30, 4, 8*gi, 0, 0, 10)}
	want[0].add(usage(20*60, 2, 0, 0, 0, 21))
	var gotUsage []Usage
	for _, r := range got {
		gotUsage = append(gotUsage, r.Usage)
	}
	if diff := cmp.Diff(want, gotUsage, cmpopts.EquateApprox(1e-12, 1e-6)); diff != "" {
		t.Errorf("records on stdout (-want +got):\n%s", diff)
	}
	if !s.logs.contains("consumers must de-duplicate by id") {
		t.Errorf("log does not explain stdout: %v", s.logs.lines)
	}
	if _, err := os.Stat(statePath(StdoutOutput)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stdout output wrote a state file: %v", err)
	}
}

func TestMeterListErrorDiscardsThePass(t *testing.T) {
	s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
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
	if !s.logs.contains("Listing pods failed") {
		t.Errorf("list error not logged: %v", s.logs.lines)
	}
	want := uninterrupted(t, t0.Add(time.Hour+30*time.Second))
	if diff := cmp.Diff(want, s.fileRecords(), cmpopts.IgnoreFields(Usage{}, "Samples")); diff != "" {
		t.Errorf("records (-uninterrupted +with a failed pass):\n%s", diff)
	}
	for _, limit := range s.pods.limits {
		if limit != 2 {
			t.Fatalf("listed with limit %d, want the page size 2", limit)
		}
	}
}

func TestMeterStartRunsOnItsTicker(t *testing.T) {
	s := newScenario(t, filepath.Join(t.TempDir(), "usage.jsonl"))
	s.pods.set(s.podsAt(t0)...)
	m := s.meter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, _ := os.ReadFile(s.output); len(data) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no window written")
		}
		if s.clock.HasWaiters() {
			s.clock.Step(testInterval)
		}
		time.Sleep(time.Millisecond) // yield to the meter's goroutine; the fake clock sets the pace
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	records := s.fileRecords()
	if len(records) != 1 || records[0].Namespace != "acme-shop" || records[0].PodSeconds < 3600 {
		t.Errorf("records: %+v", records)
	}
	if testutil.ToFloat64(lastSuccessTimestamp) == 0 || testutil.ToFloat64(recordsEmitted) == 0 {
		t.Errorf("metrics not updated")
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
