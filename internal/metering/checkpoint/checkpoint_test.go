package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// checkpointWith is a checkpoint with one open and one pending window of n
// namespaces whose sums look like real ones (not round numbers, which would
// compress better than real data).
func checkpointWith(n int) *Checkpoint {
	rnd := rand.New(rand.NewPCG(1, 2))
	windowOf := func(start time.Time) usage.Window {
		byNS := make(map[string]*usage.Usage, n)
		for i := range n {
			secs := 3600 * rnd.Float64()
			byNS[fmt.Sprintf("customer%d-project%d", i/10, i)] = &usage.Usage{
				PodSeconds: secs * 3, CPURequestCoreSeconds: secs * 0.25 * rnd.Float64(), MemoryRequestByteSeconds: secs * 512 * (1 << 20) * rnd.Float64(),
				CPULimitCoreSeconds: secs * rnd.Float64(), MemoryLimitByteSeconds: secs * (1 << 30) * rnd.Float64(), Samples: int64(rnd.IntN(180)),
			}
		}
		return usage.Window{Start: start, End: start.Add(time.Hour), Usage: byNS}
	}
	return &Checkpoint{
		Window: time.Hour, LastPass: t0.Add(90*time.Minute + 123456789), Delivered: t0,
		Pending: []usage.Window{windowOf(t0)}, Open: []usage.Window{windowOf(t0.Add(time.Hour))},
	}
}

// roundTrip encodes and decodes cp, requires the same checkpoint back and
// returns it.
func roundTrip(t testing.TB, cp *Checkpoint) *Checkpoint {
	t.Helper()
	data, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cp, got); diff != "" {
		t.Errorf("checkpoint after a round trip (-saved +loaded):\n%s", diff)
	}
	return got
}

func TestCheckpointRoundTripIsExact(t *testing.T) {
	cp := checkpointWith(100)
	cp.Open[0].Usage["customer0-project0"].StorageByteSecondsByClass = map[string]float64{"": 1.5, "fast": 0.1 + 0.2}
	got := roundTrip(t, cp)
	// Records made from the loaded sums are the records made from the
	// saved ones, to the bit: a redelivered window is an identical one.
	w, g := cp.Pending[0], got.Pending[0]
	if diff := cmp.Diff(usage.WindowRecords("", w.Start, w.End, w.Usage), usage.WindowRecords("", g.Start, g.End, g.Usage)); diff != "" {
		t.Errorf("records (-before +after):\n%s", diff)
	}
}

// After --metering-window changes, the windows that closed before are
// still pending, with their old length, in a checkpoint of the new one.
// They keep their end: a window reloaded as [10:00, 10:15) with the usage
// of [10:00, 11:00) would be delivered with the wrong end and id.
func TestCheckpointKeepsPendingWindowsOfAnotherLength(t *testing.T) {
	old := checkpointWith(2)
	cp := &Checkpoint{Window: 15 * time.Minute, LastPass: t0.Add(70 * time.Minute), Delivered: t0,
		Pending: old.Pending, Open: []usage.Window{{Start: t0.Add(time.Hour), End: t0.Add(75 * time.Minute), Usage: old.Open[0].Usage}}}
	roundTrip(t, cp)
}

func TestDecodeCheckpointRefusesCorruptWindows(t *testing.T) {
	for _, tt := range []struct{ json, wantErr string }{
		{`{"version":2,"window":"1h","open":[{"start":"2026-03-01T11:00:00Z","usage":{}},{"start":"2026-03-01T11:00:00Z","usage":{}}]}`,
			"open window 2026-03-01T11:00:00Z is not after the one before it"},
		{`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:17:00Z","usage":{}}]}`,
			"pending window 2026-03-01T10:17:00Z to 2026-03-01T11:17:00Z is not an aligned window of 1h0m0s"},
		{`{"version":2,"window":"1h","open":[{"start":"9999-12-31T23:00:00Z","usage":{}}]}`,
			"open window 9999-12-31T23:00:00Z to 10000-01-01T00:00:00Z is not an aligned window"},
		{`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"":{"podSeconds":1}}}]}`,
			`namespace "" has usage`},
		{`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"a-b":{"podSeconds":-5}}}]}`,
			`namespace "a-b" has usage {PodSeconds:-5`},
	} {
		_, err := Decode(gzipped(t, []byte(tt.json)))
		if err == nil || !strings.HasPrefix(err.Error(), "the metering checkpoint is corrupt: ") || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("decoding %s: %v, want an error with %q", tt.json, err, tt.wantErr)
		}
	}
}

func newConfigMapStore(c client.Client) *ConfigMapStore {
	return &ConfigMapStore{Reader: c, Writer: c, Namespace: "meshcloud", Name: DefaultName, MaxParts: DefaultParts}
}

func TestConfigMapCheckpoint(t *testing.T) {
	ctx := context.Background()

	t.Run("a checkpoint larger than one ConfigMap is split into parts and read back", func(t *testing.T) {
		c := fake.NewClientBuilder().Build()
		store := newConfigMapStore(c)
		store.partBytes = 20 << 10
		if cp, err := store.Load(ctx); err != nil || cp != nil {
			t.Fatalf("Load of nothing = %v, %v; want nil, nil", cp, err)
		}
		cp := checkpointWith(1000)
		if err := store.Save(ctx, cp); err != nil {
			t.Fatal(err)
		}
		var first corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: "meshcloud", Name: DefaultName}, &first); err != nil {
			t.Fatal(err)
		}
		if first.Data[partsKey] == "1" || first.Data[generationKey] != "a" || first.Data[pendingKey] != "1" || first.Data[deliveredKey] != "2026-03-01T10:00:00Z" {
			t.Errorf("first ConfigMap's data: %v", first.Data)
		}
		if len(first.BinaryData) != 0 {
			t.Errorf("the first ConfigMap of a checkpoint in parts holds data: %v", first.BinaryData)
		}
		got, err := newConfigMapStore(c).Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(cp, got); diff != "" {
			t.Errorf("checkpoint (-saved +loaded):\n%s", diff)
		}
	})
}

// A store that lost its leadership writes nothing of the new leader's.
func TestConfigMapCheckpointFencing(t *testing.T) {
	ctx := context.Background()

	t.Run("a store that did not read the latest checkpoint is fenced, part or first", func(t *testing.T) {
		c := fake.NewClientBuilder().Build()
		old, leader := newConfigMapStore(c), newConfigMapStore(c)
		old.partBytes, leader.partBytes = 20<<10, 20<<10
		if _, err := old.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := old.Save(ctx, checkpointWith(10)); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := leader.Save(ctx, checkpointWith(1000)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{10, 1000} {
			if err := old.Save(ctx, checkpointWith(n)); !errors.Is(err, ErrFenced) {
				t.Errorf("the old store's save of %d namespaces: %v, want ErrFenced", n, err)
			}
		}
		if err := leader.Save(ctx, checkpointWith(1000)); err != nil {
			t.Errorf("the leader is fenced by the old store's failed saves: %v", err)
		}
	})

	t.Run("a deposed store is fenced before it writes a part of the generation the leader saved", func(t *testing.T) {
		c := fake.NewClientBuilder().Build()
		old, leader := newConfigMapStore(c), newConfigMapStore(c)
		old.partBytes, leader.partBytes = 20<<10, 20<<10
		if _, err := old.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := old.Save(ctx, checkpointWith(1000)); err != nil { // generation a
			t.Fatal(err)
		}
		if _, err := leader.Load(ctx); err != nil {
			t.Fatal(err)
		}
		saved := checkpointWith(1000)
		saved.LastPass = saved.LastPass.Add(time.Minute)
		if err := leader.Save(ctx, saved); err != nil { // generation b
			t.Fatal(err)
		}
		versions := func() map[string]string {
			v := map[string]string{}
			for _, name := range Names(DefaultName, DefaultParts) {
				var cm corev1.ConfigMap
				if err := c.Get(ctx, client.ObjectKey{Namespace: "meshcloud", Name: name}, &cm); err == nil {
					v[name] = cm.ResourceVersion
				}
			}
			return v
		}
		before := versions()
		// The old store still believes generation a is current, so it
		// would write generation b: the leader's.
		if err := old.Save(ctx, checkpointWith(1000)); !errors.Is(err, ErrFenced) {
			t.Fatalf("the deposed store's save: %v, want ErrFenced", err)
		}
		if diff := cmp.Diff(before, versions()); diff != "" {
			t.Errorf("the deposed store wrote (-resourceVersions before +after):\n%s", diff)
		}
		if got, err := newConfigMapStore(c).Load(ctx); err != nil || !cmp.Equal(got, saved) {
			t.Errorf("after the deposed store's save: %v, %s", err, cmp.Diff(saved, got))
		}
		if err := leader.Save(ctx, checkpointWith(1000)); err != nil {
			t.Errorf("the leader is fenced by the deposed store's failed save: %v", err)
		}
	})
}

// savedInParts is a store that saved a checkpoint of 1000 namespaces to c,
// in parts of 20 KiB.
func savedInParts(ctx context.Context, t *testing.T, c client.Client) *ConfigMapStore {
	t.Helper()
	store := newConfigMapStore(c)
	store.partBytes = 20 << 10
	if _, err := store.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(ctx, checkpointWith(1000)); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestConfigMapCheckpointRefuses(t *testing.T) {
	ctx := context.Background()

	t.Run("parts that do not match the checksum are refused", func(t *testing.T) {
		c := fake.NewClientBuilder().Build()
		savedInParts(ctx, t, c)
		var part corev1.ConfigMap
		key := client.ObjectKey{Namespace: "meshcloud", Name: DefaultName + "-a-1"}
		if err := c.Get(ctx, key, &part); err != nil {
			t.Fatal(err)
		}
		part.BinaryData[checkpointKey][0] ^= 0xff
		if err := c.Update(ctx, &part); err != nil {
			t.Fatal(err)
		}
		if _, err := newConfigMapStore(c).Load(ctx); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("Load of a torn checkpoint: %v, want a checksum error", err)
		}
	})

	t.Run("a checkpoint that needs more parts than allowed is not saved and says what to raise", func(t *testing.T) {
		c := fake.NewClientBuilder().Build()
		store := newConfigMapStore(c)
		store.partBytes, store.MaxParts = 1<<10, 2
		if _, err := store.Load(ctx); err != nil {
			t.Fatal(err)
		}
		err := store.Save(ctx, checkpointWith(1000))
		if err == nil || !strings.Contains(err.Error(), "--metering-checkpoint-parts=2") || errors.Is(err, ErrFenced) {
			t.Errorf("Save: %v", err)
		}
	})
}

// BenchmarkCheckpoint measures the checkpoint of N namespaces with usage in
// the open window and as many in a closed window awaiting delivery: its
// compressed size, the ConfigMaps it takes, and the time to encode it.
//
// Run it with `make bench BENCH_PKGS=./internal/metering/`.
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		b.Run(fmt.Sprintf("namespaces=%d", n), func(b *testing.B) {
			open := checkpointWith(n)
			open.Pending = nil
			both := checkpointWith(n)
			var size, sizeOpen int
			for b.Loop() {
				data, err := Encode(both)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			data, err := Encode(open)
			if err != nil {
				b.Fatal(err)
			}
			sizeOpen = len(data)
			b.ReportMetric(float64(sizeOpen), "B-open-window")
			b.ReportMetric(float64(size), "B-open+pending")
			b.ReportMetric(float64((size+maxPartBytes-1)/maxPartBytes), "configmaps")
		})
	}
}
