package checkpoint

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
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
		allocated := allocatedBy(func() { _, err = Decode(bomb) })
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 64 MiB") {
			t.Errorf("decoding a 900 MiB gzip bomb: %v, want ErrTooLarge", err)
		}
		// The buffer doubles up to the limit: about twice the limit in
		// all, never the 900 MiB.
		if allocated > 3*MaxBytes {
			t.Errorf("decoding a 900 MiB gzip bomb allocated %d MiB, want less than %d", allocated>>20, 3*MaxBytes>>20)
		}
	})

	t.Run("loading from a ConfigMap with a matching checksum", func(t *testing.T) {
		sum := sha256.Sum256(bomb)
		c := fake.NewClientBuilder().WithObjects(&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "meshcloud", Name: DefaultName},
			Data:       map[string]string{partsKey: "1", sha256Key: hex.EncodeToString(sum[:])},
			BinaryData: map[string][]byte{checkpointKey: bomb},
		}).Build()
		if _, err := newConfigMapStore(c).Load(context.Background()); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Load: %v, want ErrTooLarge", err)
		}
	})

	t.Run("a checkpoint just inside the limit is read", func(t *testing.T) {
		raw, err := readAtMost(bytes.NewReader(make([]byte, MaxBytes)), MaxBytes)
		if err != nil || len(raw) != MaxBytes {
			t.Errorf("readAtMost of exactly the limit: %d bytes, %v", len(raw), err)
		}
		if _, err := readAtMost(bytes.NewReader(make([]byte, MaxBytes+1)), MaxBytes); !errors.Is(err, ErrTooLarge) {
			t.Errorf("readAtMost of one byte more: %v", err)
		}
	})
}

func TestConfigMapCheckpointDeletedUnderTheLeader(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().Build()
	store := savedInParts(ctx, t, c)
	deleteAll := func() {
		for _, name := range Names(DefaultName, DefaultParts) {
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
	got, err := newConfigMapStore(c).Load(ctx)
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
		other := newConfigMapStore(c)
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

// The encoder refuses a sum that is not finite with a message that names
// the namespace, rather than the half-written JSON encoding/json fails on.
func TestEncodeRefusesNonFiniteSums(t *testing.T) {
	cp := checkpointWith(3)
	cp.Open[0].Usage["customer0-project1"].MemoryLimitByteSeconds = math.Inf(1)
	_, err := Encode(cp)
	if err == nil || !strings.Contains(err.Error(), `namespace "customer0-project1"`) || strings.Contains(err.Error(), "json") {
		t.Errorf("encoding a checkpoint with +Inf: %v, want a refusal that names the namespace", err)
	}
}
