package checkpoint

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

func gzipped(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// checkpointSeeds are JSON checkpoints, sound and corrupt in the ways a
// hand edit, a bug or a torn write could make them.
var checkpointSeeds = []string{
	`{"version":2,"window":"1h0m0s","lastPass":"2026-03-01T11:30:00Z","delivered":"2026-03-01T10:00:00Z","open":[{"start":"2026-03-01T11:00:00Z","usage":{"acme-shop":{"podSeconds":1800,"samples":3}}}],"pending":[{"start":"2026-03-01T10:00:00Z","usage":{"acme-shop":{"podSeconds":3600,"cpuRequestCoreSeconds":0.30000000000000004,"storageByteSecondsByClass":{"":1.5,"fast":2}}}}]}`,
	`{"version":2,"window":"1h0m0s","lastPass":"0001-01-01T00:00:00Z","open":[],"pending":[]}`,
	`{"version":1,"window":"1h0m0s","lastPass":"2026-03-01T11:30:00Z","open":[],"pending":[]}`,
	`{"version":2,"window":"0s","lastPass":"2026-03-01T11:30:00Z"}`,
	`{"version":2,"window":"-1h","lastPass":"2026-03-01T11:30:00Z"}`,
	`{"version":2,"window":"1ns","lastPass":"2026-03-01T11:30:00Z","open":[{"start":"2026-03-01T11:00:00.5Z","usage":{}}]}`,
	`{"version":2,"window":"1h","open":[{"start":"2026-03-01T11:00:00Z","usage":{"a-b":{"podSeconds":1}}},{"start":"2026-03-01T11:00:00Z","usage":{"c-d":{"podSeconds":2}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T12:00:00Z","usage":{"a-b":{"podSeconds":1}}},{"start":"2026-03-01T11:00:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","open":[{"start":"2026-03-01T10:00:00Z","usage":{}}],"pending":[{"start":"2026-03-01T11:00:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:17:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","open":[{"start":"9999-12-31T23:00:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","open":[{"start":"1000-01-01T00:00:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"a-b":null,"c-d":{"podSeconds":-5,"samples":-1}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"a-b":{"podSeconds":1e308,"memoryRequestByteSeconds":1e309}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","usage":{"a-b":{"storageByteSecondsByClass":{"x":-1}}}}]}`,
	`{"version":2,"window":"1h","delivered":null,"open":null,"pending":null}`,
	`{"version":2,"window":"24h","pending":[{"start":"2026-03-01T00:00:00+05:00","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"15m0s","pending":[{"start":"2026-03-01T10:00:00Z","end":"2026-03-01T11:00:00Z","usage":{"a-b":{"podSeconds":3600}}},{"start":"2026-03-01T11:00:00Z","usage":{"a-b":{"podSeconds":900}}}],"open":[{"start":"2026-03-01T11:15:00Z","usage":{}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:15:00Z","end":"2026-03-01T10:30:00Z","usage":{"a-b":{"podSeconds":1}}}],"open":[{"start":"2026-03-01T10:00:00Z","usage":{"a-b":{"podSeconds":1}}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","end":"2026-03-01T09:00:00Z","usage":{}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","end":"2026-03-01T10:20:00Z","usage":{}}]}`,
	`{"version":2,"window":"1h","pending":[{"start":"2026-03-01T10:00:00Z","end":"2026-03-01T12:00:00Z","usage":{}},{"start":"2026-03-01T11:00:00Z","usage":{}}]}`,
	`{"version":2,"window":"1h","open":[{"start":"2026-03-01T10:00:00Z","end":"2026-03-01T10:30:00Z","usage":{}}]}`,
	`[]`, `null`, `{"version":2`, ``,
}

// FuzzDecodeCheckpoint decodes fuzzed checkpoints, gzipped by the test or
// fuzzed as they are (the gzip layer itself). A checkpoint is the meter's memory of what it has
// counted and what it still has to deliver; what the decoder accepts must
// therefore be one the meter can continue from without losing or
// garbling a window:
//
//   - every open window is one whole window long, every pending one as
//     long as it was when it closed; each is aligned to its length, at a
//     time the aggregator can key, with finite, non-negative usage of
//     named namespaces; windows are in order;
//   - the aggregator restored from it holds exactly its open windows;
//   - each pending window's records are written as one complete window
//     that the output reader reads back as such;
//   - it encodes and decodes to itself.
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, cp := range []*Checkpoint{checkpointWith(3), {Window: time.Hour}} {
		data, err := Encode(cp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, true)
		f.Add(data[:len(data)/2], true)
	}
	for _, s := range checkpointSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		if !compressed {
			data = gzipped(t, data)
		}
		cp, err := Decode(data)
		if err != nil {
			if cp != nil {
				t.Fatalf("Decode returned a checkpoint with the error %v", err)
			}
			return
		}
		if cp.Window <= 0 {
			t.Fatalf("window %v", cp.Window)
		}
		expectSoundWindows(t, "open", cp.Open, func(time.Duration) time.Duration { return cp.Window })
		// A pending window closed before --metering-window changed keeps
		// its own length.
		expectSoundWindows(t, "pending", cp.Pending, func(l time.Duration) time.Duration { return l })

		if diff := cmp.Diff(cp.Open, usage.RestoreAggregator(cp.Window, cp.LastPass, cp.Open).Open()); diff != "" {
			t.Fatalf("the restored aggregator's open windows (-checkpoint +aggregator):\n%s", diff)
		}
		for _, w := range cp.Pending {
			if len(w.Usage) == 0 {
				continue // delivers nothing
			}
			// What the outputs' readers take for a record of this package.
			for _, r := range usage.WindowRecords("", w.Start, w.End, w.Usage) {
				if !r.Valid() {
					t.Fatalf("pending window %v has a record %+v that is not valid", w.Start, r)
				}
			}
		}

		roundTrip(t, cp)
	})
}

// expectSoundWindows checks windows of the length that length gives for
// a window's own length.
func expectSoundWindows(t *testing.T, kind string, windows []usage.Window, length func(time.Duration) time.Duration) {
	t.Helper()
	for i, w := range windows {
		own := w.End.Sub(w.Start)
		if own <= 0 || own != length(own) || !usage.WindowStart(w.Start, own).Equal(w.Start) || !time.Unix(0, w.Start.UnixNano()).Equal(w.Start) {
			t.Fatalf("%s window %d [%v, %v) is not a window of %v the aggregator could hold", kind, i, w.Start, w.End, length(own))
		}
		if i > 0 && (!windows[i-1].Start.Before(w.Start) || !windows[i-1].End.Before(w.End)) {
			t.Fatalf("%s window %d [%v, %v) is not after the one before, [%v, %v)", kind, i, w.Start, w.End, windows[i-1].Start, windows[i-1].End)
		}
		for ns, u := range w.Usage {
			if ns == "" || u == nil || !usageSound(u) {
				t.Fatalf("%s window %d: usage %+v of namespace %q", kind, i, u, ns)
			}
		}
	}
}

func usageSound(u *usage.Usage) bool {
	ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
	for _, v := range u.StorageByteSecondsByClass {
		if !ok(v) {
			return false
		}
	}
	return u.Samples >= 0 && ok(u.PodSeconds) && ok(u.CPURequestCoreSeconds) && ok(u.MemoryRequestByteSeconds) &&
		ok(u.CPULimitCoreSeconds) && ok(u.MemoryLimitByteSeconds) && ok(u.StorageByteSeconds)
}

// FuzzConfigMapCheckpointLoad serves a fuzzed checkpoint payload, split
// into parts, from ConfigMaps whose parts count and checksum may be wrong
// and whose parts may be missing. Load must not panic; it returns no
// checkpoint and no error only when the first ConfigMap is missing (there
// is none yet), and otherwise either refuses or returns exactly what the
// declared parts decode to. A store that loaded a checkpoint holds the
// fence: it can save that checkpoint back, and the next process reads the
// same.
func FuzzConfigMapCheckpointLoad(f *testing.F) {
	for _, cp := range []*Checkpoint{checkpointWith(20), {Window: time.Hour}} {
		data, err := Encode(cp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0), "", true, uint8(0))
		f.Add(data, uint8(2), "", true, uint8(0))
		f.Add(data, uint8(2), "", true, uint8(2))
		f.Add(data, uint8(3), "", true, uint8(0))
		f.Add(data, uint8(1), "3", true, uint8(0))
		f.Add(data, uint8(1), "0", true, uint8(0))
		f.Add(data, uint8(1), "-1", true, uint8(0))
		f.Add(data, uint8(1), "1", true, uint8(0))
		f.Add(data, uint8(1), "", false, uint8(0))
		f.Add(data, uint8(1), "", true, uint8(1))
	}
	f.Add([]byte{}, uint8(0), "", true, uint8(0))
	// Building a fake client takes milliseconds; one serves every input,
	// each under its own names. A tracker without managed fields spares
	// each create the building of a RESTMapper.
	c := fake.NewClientBuilder().WithObjectTracker(
		clienttesting.NewObjectTracker(scheme.Scheme, scheme.Codecs.UniversalDecoder())).Build()
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, payload []byte, parts uint8, partsValue string, sumRight bool, missing uint8) {
		ctx := t.Context()
		store := newConfigMapStore(c)
		store.Name = fmt.Sprintf("checkpoint%d", seq.Add(1))
		store.MaxParts, store.partBytes = 3, 1<<10
		defer func() {
			for _, name := range Names(store.Name, 4) {
				_ = c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: store.Namespace, Name: name}})
			}
		}()
		// The layout before generations: the first ConfigMap and Name-1 ….
		partName := func(i int) string {
			if i == 0 {
				return store.Name
			}
			return store.legacyPartName(i)
		}

		n := int(parts%4) + 1
		chunks := make([][]byte, n)
		for i := range n {
			chunks[i] = payload[len(payload)*i/n : len(payload)*(i+1)/n]
		}
		skip := int(missing) % (n + 1) // n: none is missing
		if partsValue == "" {
			partsValue = strconv.Itoa(n)
		}
		sum := sha256.Sum256(payload)
		if !sumRight {
			sum[0] ^= 1
		}
		for i := range n {
			if i == skip {
				continue
			}
			cm := &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: store.Namespace, Name: partName(i)},
				BinaryData: map[string][]byte{checkpointKey: chunks[i]},
			}
			if i == 0 {
				cm.Data = map[string]string{partsKey: partsValue, sha256Key: hex.EncodeToString(sum[:])}
			}
			if err := c.Create(ctx, cm); err != nil {
				t.Fatal(err)
			}
		}

		cp, err := store.Load(ctx)
		if skip == 0 {
			if cp != nil || err != nil {
				t.Fatalf("Load without the first ConfigMap = %v, %v; want nothing", cp, err)
			}
			return
		}
		if err != nil {
			if cp != nil {
				t.Fatalf("Load returned a checkpoint with the error %v", err)
			}
			return
		}
		if cp == nil {
			t.Fatal("Load found the first ConfigMap but returned neither a checkpoint nor an error")
		}
		declared, _ := strconv.Atoi(partsValue)
		want, err := Decode(bytes.Join(chunks[:declared], nil))
		if err != nil {
			t.Fatalf("Load accepted parts that do not decode: %v", err)
		}
		if diff := cmp.Diff(want, cp); diff != "" {
			t.Fatalf("Load (-declared parts +loaded):\n%s", diff)
		}

		if err := store.Save(ctx, cp); err != nil {
			if errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "--metering-checkpoint-parts") {
				t.Fatalf("the store that loaded the checkpoint cannot save it: %v", err)
			}
			return // too big for three parts of 1 KiB
		}
		next := newConfigMapStore(c)
		next.Name, next.MaxParts = store.Name, 3
		again, err := next.Load(ctx)
		if err != nil {
			t.Fatalf("the checkpoint saved back does not load: %v", err)
		}
		if diff := cmp.Diff(cp, again); diff != "" {
			t.Fatalf("saved and loaded again (-saved +loaded):\n%s", diff)
		}
	})
}
