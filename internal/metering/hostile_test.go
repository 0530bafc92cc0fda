package metering

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// One pod with a memory limit of 1e400 used to turn its namespace's sum
// into +Inf, fail every checkpoint save and so stop the delivery of every
// namespace's windows.
func TestMeterHostileQuantityStopsNothing(t *testing.T) {
	end := t0.Add(2*time.Hour + 30*time.Second)
	want := uninterrupted(t, end)

	s := newScenario(t, sink.StdoutOutput)
	honest := s.podsAt
	s.podsAt = func(at time.Time) []*corev1.Pod {
		return append(honest(at), newPod("evil-ns", "bomb", startedAt(t0.Add(-time.Hour)), resources("1", "1Gi", "", "1e400")))
	}
	before := testutil.ToFloat64(invalidQuantities.WithLabelValues("evil-ns", "limits.memory"))
	errorsBefore := testutil.ToFloat64(checkpointErrors)
	r := s.start()
	s.runUntil(r, end)
	s.stop(r)

	var others, evil []usage.Record
	for _, rec := range s.records() {
		if rec.Namespace == "evil-ns" {
			evil = append(evil, rec)
		} else {
			others = append(others, rec)
		}
	}
	// The hostile namespace adds a record to each window.
	if diff := cmp.Diff(want, others, cmpopts.IgnoreFields(usage.Record{}, "WindowRecords")); diff != "" {
		t.Errorf("records of the other namespaces (-without the hostile pod +with it):\n%s", diff)
	}
	wantEvil := []usage.Usage{*usageOf(3600, 1, gi, 0, 0, 61), *usageOf(3600, 1, gi, 0, 0, 61)}
	gotEvil := make([]usage.Usage, 0, len(evil))
	for _, rec := range evil {
		gotEvil = append(gotEvil, rec.Usage)
	}
	if diff := cmp.Diff(wantEvil, gotEvil); diff != "" {
		t.Errorf("records of the hostile pod's namespace (-want +got):\n%s", diff)
	}
	passes := 121
	if got := testutil.ToFloat64(invalidQuantities.WithLabelValues("evil-ns", "limits.memory")) - before; got != float64(passes) {
		t.Errorf("invalid quantities went up by %v, want one per pass (%d)", got, passes)
	}
	if got := testutil.ToFloat64(checkpointErrors) - errorsBefore; got != 0 {
		t.Errorf("%v checkpoint saves failed", got)
	}
	if n := s.logs.Count("count as 0"); n != passes {
		t.Errorf("logged %d lines about invalid quantities in %d passes, want one per pass", n, passes)
	}
	if !s.logs.Contains(`"first"="Pod evil-ns/bomb: limits.memory 10e399"`) {
		t.Errorf("the log does not name the pod and quantity: %v", s.logs.Lines()[len(s.logs.Lines())-1])
	}
}

// Defence in depth: a sum that is not finite never reaches the encoder
// (which refuses one, see package checkpoint): the meter saves it as 0.
func TestCheckpointNeverHoldsNonFiniteSums(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	r := s.start()
	s.passOnce(r)
	r.agg.Open()[0].Usage["acme-shop"].CPULimitCoreSeconds = math.Inf(1)
	s.clock.Step(testInterval)
	s.passOnce(r)
	if got := testutil.ToFloat64(checkpointSaveFailing); got != 0 {
		t.Errorf("the save failed: meshstack_metering_checkpoint_save_failing = %v", got)
	}
	saved, err := s.checkpoint.handle().Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := saved.Open[0].Usage["acme-shop"]; got.CPULimitCoreSeconds != 0 || got.PodSeconds == 0 {
		t.Errorf("saved usage %+v, want the +Inf figure as 0 and the others kept", got)
	}
	if !s.logs.Contains("A usage sum is negative or not finite") {
		t.Errorf("not logged: %v", s.logs.Lines())
	}
}
