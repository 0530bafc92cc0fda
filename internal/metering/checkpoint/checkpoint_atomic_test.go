package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// testPartBytes makes checkpoints of a few dozen namespaces take several
// parts.
const testPartBytes = 1 << 10

// checkpointInParts is a checkpoint that takes exactly parts ConfigMaps of
// testPartBytes, its last pass moved by minutes (so that checkpoints of
// the same size differ).
func checkpointInParts(t *testing.T, parts, minutes int) *Checkpoint {
	t.Helper()
	for n := 1; n < 1000; n++ {
		cp := checkpointWith(n)
		cp.LastPass = cp.LastPass.Add(time.Duration(minutes) * time.Minute)
		data, err := Encode(cp)
		if err != nil {
			t.Fatal(err)
		}
		if got := (len(data) + testPartBytes - 1) / testPartBytes; got == parts {
			return cp
		}
	}
	t.Fatalf("no checkpoint takes %d parts", parts)
	return nil
}

// cutter fails the at-th write (create or update, from 1) of the client it
// wraps: refused, or, with applied, applied by the API server but
// reported as timed out, as a request whose answer is lost. writes counts
// the writes.
type cutter struct {
	at      int
	applied bool
	writes  int
	fired   bool
}

func (ct *cutter) client(c client.WithWatch) client.WithWatch {
	do := func(write func(client.Object) error, obj client.Object) error {
		ct.writes++
		if ct.writes != ct.at {
			return write(obj)
		}
		ct.fired = true
		if !ct.applied {
			return apierrors.NewServiceUnavailable("the write is refused")
		}
		// The caller never learns the new resourceVersion.
		if err := write(obj.DeepCopyObject().(client.Object)); err != nil {
			return err
		}
		return fmt.Errorf("the write was applied, but its answer is lost: %w", context.DeadlineExceeded)
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return do(func(o client.Object) error { return c.Create(ctx, o, opts...) }, obj)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return do(func(o client.Object) error { return c.Update(ctx, o, opts...) }, obj)
		},
	})
}

// saveLegacy writes cp as the release before generations did: the first
// part in the first ConfigMap, the others in Name-1, Name-2, ….
func saveLegacy(t *testing.T, c client.Client, cp *Checkpoint) {
	t.Helper()
	data, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	var chunks [][]byte
	for rest := data; len(rest) > 0; {
		k := min(testPartBytes, len(rest))
		chunks, rest = append(chunks, rest[:k]), rest[k:]
	}
	for i, chunk := range chunks {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "meshcloud", Name: DefaultName},
			BinaryData: map[string][]byte{checkpointKey: chunk},
		}
		if i == 0 {
			cm.Data = map[string]string{partsKey: strconv.Itoa(len(chunks)), sha256Key: hex.EncodeToString(sum[:])}
		} else {
			cm.Name = fmt.Sprintf("%s-%d", DefaultName, i)
		}
		if err := c.Create(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
	}
}

// loadAfresh loads the checkpoint as a new process does.
func loadAfresh(t *testing.T, c client.Client) (*Checkpoint, error) {
	t.Helper()
	store := newConfigMapStore(c)
	return store.Load(context.Background())
}

// oneOf says which of want got is, or -1.
func oneOf(got *Checkpoint, want ...*Checkpoint) int {
	for i, w := range want {
		if cmp.Equal(got, w) {
			return i
		}
	}
	return -1
}

// TestConfigMapCheckpointSaveStoppedAnywhere stops a save at each of its
// writes in turn, refused or applied with its answer lost, from every
// layout the checkpoint can be in, to checkpoints of one to five parts. A
// new process must then read exactly the old or exactly the new
// checkpoint, never fail; and the process whose save stopped must, when it
// carries on, either save a newer checkpoint or be fenced, and never leave
// anything a new process cannot read.
func TestConfigMapCheckpointSaveStoppedAnywhere(t *testing.T) {
	ctx := context.Background()
	save := func(cps ...*Checkpoint) func(*testing.T, client.Client) {
		return func(t *testing.T, c client.Client) {
			store := newConfigMapStore(c)
			store.partBytes = testPartBytes
			if _, err := store.Load(ctx); err != nil {
				t.Fatal(err)
			}
			for _, cp := range cps {
				if err := store.Save(ctx, cp); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	inB := checkpointInParts(t, 3, 0)
	legacy := checkpointInParts(t, 3, -1)
	olds := []struct {
		name  string
		cp    *Checkpoint
		setup func(*testing.T, client.Client)
	}{
		{"no checkpoint", nil, func(*testing.T, client.Client) {}},
		{"one ConfigMap", checkpointInParts(t, 1, 0), nil},
		{"2 parts of generation a", checkpointInParts(t, 2, 0), nil},
		{"3 parts of generation b", inB, save(checkpointInParts(t, 4, -2), inB)},
		{"3 parts written before generations", legacy, func(t *testing.T, c client.Client) { saveLegacy(t, c, legacy) }},
	}
	for _, old := range olds {
		if old.setup == nil {
			old.setup = save(old.cp)
		}
		for _, parts := range []int{1, 2, 3, 5} {
			next, newer := checkpointInParts(t, parts, 1), checkpointInParts(t, 3, 2)
			for _, applied := range []bool{false, true} {
				name := fmt.Sprintf("%s to %d parts, refused", old.name, parts)
				if applied {
					name = fmt.Sprintf("%s to %d parts, applied and timed out", old.name, parts)
				}
				t.Run(name, func(t *testing.T) {
					for at := 1; ; at++ {
						c := fake.NewClientBuilder().Build()
						old.setup(t, c)
						ct := &cutter{at: at, applied: applied}
						store := newConfigMapStore(ct.client(c))
						store.Reader, store.partBytes = c, testPartBytes
						if got, err := store.Load(ctx); err != nil || !cmp.Equal(got, old.cp) {
							t.Fatalf("Load before the save: %v, %v", err, cmp.Diff(old.cp, got))
						}
						err := store.Save(ctx, next)
						if !ct.fired {
							// The save has fewer writes than at: every cut is tested.
							if err != nil {
								t.Fatal(err)
							}
							if got, err := loadAfresh(t, c); err != nil || !cmp.Equal(got, next) {
								t.Fatalf("after a whole save: %v, %v", err, cmp.Diff(next, got))
							}
							if at < 2 {
								t.Fatalf("a save without writes")
							}
							return
						}
						if err == nil {
							t.Fatalf("write %d failed but Save succeeded", at)
						}
						got, err := loadAfresh(t, c)
						if err != nil {
							t.Fatalf("write %d stopped the save, and the next process cannot load the checkpoint: %v", at, err)
						}
						if oneOf(got, old.cp, next) < 0 {
							t.Fatalf("write %d stopped the save, and the next process loads neither the old nor the new checkpoint:\n%s",
								at, cmp.Diff(next, got))
						}

						// The same process carries on with its next pass.
						ct.at = 0
						err = store.Save(ctx, newer)
						if err != nil && !errors.Is(err, ErrFenced) {
							t.Fatalf("the save after write %d failed: %v", at, err)
						}
						got, lerr := loadAfresh(t, c)
						switch {
						case lerr != nil:
							t.Fatalf("write %d stopped the save, and after the next save (%v) the checkpoint cannot be loaded: %v", at, err, lerr)
						case err == nil && !cmp.Equal(got, newer):
							t.Fatalf("write %d stopped the save; the next one succeeded but saved something else:\n%s", at, cmp.Diff(newer, got))
						case err != nil && oneOf(got, old.cp, next) < 0:
							t.Fatalf("write %d stopped the save; the next one was fenced (%v) and left neither checkpoint:\n%s", at, err, cmp.Diff(next, got))
						}
					}
				})
			}
		}
	}
}
