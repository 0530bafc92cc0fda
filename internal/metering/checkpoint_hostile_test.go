package metering

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// failingSaves fails every Save while fail is set, as an API server that
// refuses or cannot be reached does.
type failingSaves struct {
	CheckpointStore
	fail bool
}

func (f *failingSaves) Save(ctx context.Context, cp *Checkpoint) error {
	if f.fail {
		return errors.New("the API server is not there")
	}
	return f.CheckpointStore.Save(ctx, cp)
}

func TestMeterSaveFailureIsVisible(t *testing.T) {
	s := newScenario(t, StdoutOutput)
	m := s.meter()
	store := &failingSaves{CheckpointStore: m.Checkpoint}
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
		s := newScenario(t, StdoutOutput)
		s.checkpoint = nil
		r := s.start()
		s.runUntil(r, t0.Add(5*time.Minute))
		if got, want := testutil.ToFloat64(lastSuccessTimestamp), float64(t0.Add(4*time.Minute+30*time.Second).Unix()); got != want {
			t.Errorf("last success %v, want %v", got, want)
		}
	})
}

// gzipBomb is gzip that inflates to n MiB of zeros, made of identical gzip
// members of 8 MiB each (a reader reads them as one stream): about 1000:1.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 8<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), n/8)
}

// allocatedBy is the number of bytes f allocates.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestCheckpointDecompressionIsBounded(t *testing.T) {
	bomb := gzipBomb(t, 900)
	if len(bomb) > 8*maxPartBytes {
		t.Fatalf("the bomb is %d bytes, more than a checkpoint's ConfigMaps hold", len(bomb))
	}

	t.Run("decoding", func(t *testing.T) {
		var err error
		allocated := allocatedBy(func() { _, err = decodeCheckpoint(bomb) })
		if !errors.Is(err, ErrCheckpointTooLarge) || !strings.Contains(err.Error(), "more than 64 MiB") {
			t.Errorf("decoding a 900 MiB gzip bomb: %v, want ErrCheckpointTooLarge", err)
		}
		// The buffer doubles up to the limit: about twice the limit in
		// all, never the 900 MiB.
		if allocated > 3*MaxCheckpointBytes {
			t.Errorf("decoding a 900 MiB gzip bomb allocated %d MiB, want less than %d", allocated>>20, 3*MaxCheckpointBytes>>20)
		}
	})

	t.Run("loading from a ConfigMap with a matching checksum", func(t *testing.T) {
		sum := sha256.Sum256(bomb)
		c := fake.NewClientBuilder().WithObjects(&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "meshcloud", Name: DefaultCheckpointName},
			Data:       map[string]string{partsKey: "1", sha256Key: hex.EncodeToString(sum[:])},
			BinaryData: map[string][]byte{checkpointKey: bomb},
		}).Build()
		if _, err := newConfigMapCheckpoint(c).Load(context.Background()); !errors.Is(err, ErrCheckpointTooLarge) {
			t.Errorf("Load: %v, want ErrCheckpointTooLarge", err)
		}
	})

	t.Run("a checkpoint just inside the limit is read", func(t *testing.T) {
		raw, err := readAtMost(bytes.NewReader(make([]byte, MaxCheckpointBytes)), MaxCheckpointBytes)
		if err != nil || len(raw) != MaxCheckpointBytes {
			t.Errorf("readAtMost of exactly the limit: %d bytes, %v", len(raw), err)
		}
		if _, err := readAtMost(bytes.NewReader(make([]byte, MaxCheckpointBytes+1)), MaxCheckpointBytes); !errors.Is(err, ErrCheckpointTooLarge) {
			t.Errorf("readAtMost of one byte more: %v", err)
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
	s := newScenario(t, StdoutOutput)
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
	err := m.ReadyCheck(httptest.NewRequest("GET", "/readyz", nil))
	if err == nil || !strings.Contains(err.Error(), "10m0s after this process's clock") {
		t.Errorf("readiness while refusing: %v, want an error that says how far ahead the checkpoint is", err)
	}
	if !s.logs.contains("Refusing to meter from the metering checkpoint") {
		t.Errorf("no error logged: %v", s.logs.lines)
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
	if err := m.ReadyCheck(httptest.NewRequest("GET", "/readyz", nil)); err != nil {
		t.Errorf("not ready after resuming: %v", err)
	}
	s.stop(r)
}

func TestConfigMapCheckpointDeletedUnderTheLeader(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().Build()
	store := newConfigMapCheckpoint(c)
	store.partBytes = 20 << 10
	if _, err := store.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(ctx, checkpointWith(1000)); err != nil {
		t.Fatal(err)
	}
	deleteAll := func() {
		for _, name := range CheckpointNames(DefaultCheckpointName, DefaultCheckpointParts) {
			err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshcloud", Name: name}})
			if client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			}
		}
	}
	deleteAll()
	before := testutil.ToFloat64(checkpointRecreated)
	latest := checkpointWith(1000)
	latest.LastPass = latest.LastPass.Add(time.Minute)
	if err := store.Save(ctx, latest); err != nil {
		t.Fatalf("saving after the checkpoint was deleted: %v", err)
	}
	// The parts go to the other generation, which did not exist yet;
	// the first ConfigMap is created again.
	if got := testutil.ToFloat64(checkpointRecreated) - before; got < 1 {
		t.Errorf("recreated %v ConfigMaps, want the first one", got)
	}
	got, err := newConfigMapCheckpoint(c).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(latest, got); diff != "" {
		t.Errorf("recreated checkpoint (-saved +loaded):\n%s", diff)
	}

	t.Run("another process that created it meanwhile fences this one", func(t *testing.T) {
		// (The fake client starts every object's resourceVersion at 1: an
		// update first, so that the store's differs from the new one's.)
		if err := store.Save(ctx, latest); err != nil {
			t.Fatal(err)
		}
		deleteAll()
		other := newConfigMapCheckpoint(c)
		if _, err := other.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := other.Save(ctx, checkpointWith(10)); err != nil {
			t.Fatal(err)
		}
		if err := store.Save(ctx, latest); !errors.Is(err, ErrFenced) {
			t.Errorf("Save after another process recreated the checkpoint: %v, want ErrFenced", err)
		}
	})
}
