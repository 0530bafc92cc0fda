package metering

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
)

// failingSaves fails every Save while fail is set, as an API server that
// refuses or cannot be reached does.
type failingSaves struct {
	checkpoint.Store
	fail bool
}

func (f *failingSaves) Save(ctx context.Context, cp *checkpoint.Checkpoint) error {
	if f.fail {
		return errors.New("the API server is not there")
	}
	return f.Store.Save(ctx, cp)
}

func TestMeterSaveFailureIsVisible(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	m := s.meter()
	store := &failingSaves{Store: m.Checkpoint}
	m.Checkpoint = store
	r, err := m.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.runUntil(r, t0.Add(50*time.Minute+30*time.Second))
	good := testutil.ToFloat64(lastSuccessTimestamp)
	if want := float64(t0.Add(50*time.Minute + 30*time.Second).Unix()); good != want {
		t.Fatalf("last success %v, want the last pass %v", good, want)
	}

	store.fail = true
	s.runUntil(r, t0.Add(time.Hour+30*time.Second)) // the first window closes, but cannot be fixed
	if got := testutil.ToFloat64(checkpointSaveFailing); got != 1 {
		t.Errorf("meshstack_metering_checkpoint_save_failing = %v while saves fail, want 1", got)
	}
	if got := testutil.ToFloat64(lastSuccessTimestamp); got != good {
		t.Errorf("meshstack_metering_last_success_timestamp_seconds advanced to %v without a saved checkpoint, want %v", got, good)
	}
	if len(s.records()) != 0 || r.fixed != 0 {
		t.Errorf("delivered %d records of a window that is not saved", len(s.records()))
	}

	store.fail = false
	s.runUntil(r, t0.Add(time.Hour+30*time.Second+testInterval))
	if got := testutil.ToFloat64(checkpointSaveFailing); got != 0 {
		t.Errorf("meshstack_metering_checkpoint_save_failing = %v after a good save, want 0", got)
	}
	if got, want := testutil.ToFloat64(lastSuccessTimestamp), float64(t0.Add(time.Hour+30*time.Second+testInterval).Unix()); got != want {
		t.Errorf("last success %v after a good save, want %v", got, want)
	}
	if diff := cmp.Diff(uninterrupted(t, t0.Add(time.Hour+30*time.Second))[:2], s.records()); diff != "" {
		t.Errorf("the first window once saves work again (-uninterrupted +got):\n%s", diff)
	}

	t.Run("without a checkpoint every pass is a success", func(t *testing.T) {
		s := newScenario(t, sink.StdoutOutput)
		s.checkpoint = nil
		r := s.start()
		s.runUntil(r, t0.Add(5*time.Minute))
		if got, want := testutil.ToFloat64(lastSuccessTimestamp), float64(t0.Add(4*time.Minute+30*time.Second).Unix()); got != want {
			t.Errorf("last success %v, want %v", got, want)
		}
	})
}

// waitFor polls cond (yielding to the meter's goroutines, which the fake
// clock paces) until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestMeterRefusesACheckpointFromTheFuture(t *testing.T) {
	s := newScenario(t, sink.StdoutOutput)
	r := s.start()
	s.runUntil(r, t0.Add(30*time.Minute+30*time.Second))
	s.stop(r)
	lastPass := t0.Add(30*time.Minute + 30*time.Second)

	t.Run("within the tolerated clock skew it resumes from it", func(t *testing.T) {
		s.clock.SetTime(lastPass.Add(-MaxClockSkew))
		r, err := s.meter().open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.stop(r)
	})

	// The meter's clock is 10 minutes behind the replica that wrote it.
	s.clock.SetTime(lastPass.Add(-10 * time.Minute))
	saves := s.checkpoint.saves
	m := s.meter()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := make(chan *run, 1)
	go func() {
		r, err := m.openChecked(ctx)
		if err != nil {
			t.Error(err)
		}
		opened <- r
	}()
	waitFor(t, "the refusal", func() bool { return s.clock.HasWaiters() })
	if got := testutil.ToFloat64(checkpointRefused); got != 1 {
		t.Errorf("meshstack_metering_checkpoint_refused = %v, want 1", got)
	}
	err := m.ReadyCheck(httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil))
	if err == nil || !strings.Contains(err.Error(), "10m0s after this process's clock") {
		t.Errorf("readiness while refusing: %v, want an error that says how far ahead the checkpoint is", err)
	}
	if !s.logs.Contains("Refusing to meter from the metering checkpoint") {
		t.Errorf("no error logged: %v", s.logs.Lines())
	}
	if s.checkpoint.saves != saves {
		t.Errorf("the refused checkpoint was overwritten")
	}

	// Once the clock is within the tolerance it resumes from the checkpoint
	// and loses nothing it holds.
	s.clock.SetTime(lastPass.Add(-time.Minute))
	r = <-opened
	if r == nil {
		t.Fatal("no run")
	}
	if !r.agg.Last().Equal(lastPass) {
		t.Errorf("resumes from %s, want the checkpoint's last pass %s", r.agg.Last(), lastPass)
	}
	if got := testutil.ToFloat64(checkpointRefused); got != 0 {
		t.Errorf("meshstack_metering_checkpoint_refused = %v after resuming, want 0", got)
	}
	if err := m.ReadyCheck(httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil)); err != nil {
		t.Errorf("not ready after resuming: %v", err)
	}
	s.stop(r)
}
