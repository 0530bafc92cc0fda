package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The checkpoint lives in ConfigMaps in the meter's own namespace. The
// identity may get and update only the checkpoint's names and create
// ConfigMaps; it may not list or watch them, so every read goes past the
// informer cache. It may only get the parts of the layout before
// generations (<name>-1 …), to read a checkpoint the previous release
// wrote.
//
// +kubebuilder:rbac:groups="",namespace=meshcloud,resources=configmaps,verbs=get;update,resourceNames=meshstack-metering;meshstack-metering-a-1;meshstack-metering-a-2;meshstack-metering-a-3;meshstack-metering-a-4;meshstack-metering-a-5;meshstack-metering-a-6;meshstack-metering-a-7;meshstack-metering-a-8;meshstack-metering-b-1;meshstack-metering-b-2;meshstack-metering-b-3;meshstack-metering-b-4;meshstack-metering-b-5;meshstack-metering-b-6;meshstack-metering-b-7;meshstack-metering-b-8
// +kubebuilder:rbac:groups="",namespace=meshcloud,resources=configmaps,verbs=get,resourceNames=meshstack-metering-1;meshstack-metering-2;meshstack-metering-3;meshstack-metering-4;meshstack-metering-5;meshstack-metering-6;meshstack-metering-7
// +kubebuilder:rbac:groups="",namespace=meshcloud,resources=configmaps,verbs=create

// Defaults of the checkpoint flags.
const (
	DefaultName  = "meshstack-metering"
	DefaultParts = 8
)

const (
	// checkpointKey holds (a part of) the gzipped checkpoint.
	checkpointKey = "checkpoint.json.gz"
	// Keys of the first ConfigMap that say what the checkpoint is made of,
	// and, for people, how far it has got.
	partsKey      = "parts"
	sha256Key     = "sha256"
	generationKey = "generation"
	writingKey    = "writing"
	lastPassKey   = "lastPass"
	deliveredKey  = "delivered"
	pendingKey    = "pendingWindows"
	// maxPartBytes keeps each ConfigMap well below the API server's 1 MiB
	// limit on a ConfigMap's data.
	maxPartBytes = 900 << 10
)

// generations name the two sets of data parts: <name>-a-1 … and
// <name>-b-1 ….
var generations = [2]string{"a", "b"}

// Names are the names of every ConfigMap a checkpoint of that
// name in up to parts parts may read or write: the first, both
// generations of data parts, and the parts of the layout before
// generations, which are only read.
func Names(name string, parts int) []string {
	names := []string{name}
	for _, g := range generations {
		for i := 1; i <= parts; i++ {
			names = append(names, fmt.Sprintf("%s-%s-%d", name, g, i))
		}
	}
	for i := 1; i < parts; i++ {
		names = append(names, fmt.Sprintf("%s-%d", name, i))
	}
	return names
}

// ConfigMapStore keeps the checkpoint in ConfigMaps, so that a save
// that stops anywhere leaves the old or the new checkpoint readable:
//
//   - A checkpoint that fits into one ConfigMap lives in the first one,
//     Name, with the number of parts (1) and its SHA-256. Writing it is
//     one update: atomic.
//   - A bigger one lives in the data parts of one of two generations,
//     Name-a-1 … Name-a-n or Name-b-1 … Name-b-n (up to MaxParts each),
//     and the first ConfigMap names the generation, n and the SHA-256 of
//     the whole. A save announces itself in the first ConfigMap (a fenced
//     update that keeps what it holds, adding the key "writing"), writes
//     the parts of the generation the first ConfigMap does not name, and
//     then switches the first ConfigMap to them with one update: the
//     commit point. Until that update, the first ConfigMap names the
//     previous checkpoint, whose parts no save touches; after it, the new
//     one, whose parts are all written.
//
// A checkpoint written by the release before generations (data in the
// first ConfigMap and Name-1 … Name-(n-1)) is read; the first save
// replaces it with the layout above and leaves those parts unused.
//
// Every write is an update with the resourceVersion this store last read or
// wrote (a create where there was nothing), so a process that lost its
// leadership gets a conflict instead of overwriting the new leader's
// checkpoint. The announcement also makes any older write of the first
// ConfigMap that might still be on its way (a request that timed out)
// fail, so no late commit can name parts that a later save rewrites.
type ConfigMapStore struct {
	// Reader reads past the informer cache; Writer creates and updates.
	Reader    client.Reader
	Writer    client.Writer
	Namespace string
	Name      string
	// MaxParts is the number of data parts the checkpoint may take, as
	// many per generation as the Role's resourceNames allow.
	MaxParts int
	// Log says when a deleted part is recreated.
	Log logr.Logger

	// loaded is set by a successful Load.
	loaded bool
	// head is the first ConfigMap as last read or written; nil where there
	// was none.
	head *corev1.ConfigMap
	// partVersions are the resourceVersions of each generation's parts as
	// last read or written; "" where the ConfigMap does not exist.
	partVersions [2][]string
	// partBytes overrides maxPartBytes in tests.
	partBytes int
}

var _ Store = &ConfigMapStore{}

// Describe names the checkpoint's ConfigMap.
func (c *ConfigMapStore) Describe() string {
	return fmt.Sprintf("ConfigMap %s/%s", c.Namespace, c.Name)
}

// partName names part i (from 1) of generation g.
func (c *ConfigMapStore) partName(g, i int) string {
	return fmt.Sprintf("%s-%s-%d", c.Name, generations[g], i)
}

// legacyPartName names part i (from 1) of the layout before generations.
func (c *ConfigMapStore) legacyPartName(i int) string {
	return fmt.Sprintf("%s-%d", c.Name, i)
}

// liveGeneration is the generation the first ConfigMap names, or -1.
func liveGeneration(head *corev1.ConfigMap) int {
	if head == nil {
		return -1
	}
	for g, name := range generations {
		if head.Data[generationKey] == name {
			return g
		}
	}
	return -1
}

func (c *ConfigMapStore) get(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the metering checkpoint ConfigMap %s/%s: %w", c.Namespace, name, err)
	}
	return cm, nil
}

// Load reads the first ConfigMap, then every data part the store may
// write, so that later saves know each one's resourceVersion.
func (c *ConfigMapStore) Load(ctx context.Context) (*Checkpoint, error) {
	if c.MaxParts < 1 {
		return nil, fmt.Errorf("the checkpoint needs at least one ConfigMap, got MaxParts=%d", c.MaxParts)
	}
	c.loaded, c.head = false, nil
	head, err := c.get(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	var parts [2][]*corev1.ConfigMap
	for g := range generations {
		c.partVersions[g] = make([]string, c.MaxParts)
		parts[g] = make([]*corev1.ConfigMap, c.MaxParts)
		for i := range c.MaxParts {
			cm, err := c.get(ctx, c.partName(g, i+1))
			if err != nil {
				return nil, err
			}
			if cm != nil {
				parts[g][i], c.partVersions[g][i] = cm, cm.ResourceVersion
			}
		}
	}
	// No checkpoint yet, or only the announcement of the first save.
	if head == nil || head.Data[partsKey] == "" && head.Data[writingKey] != "" {
		c.loaded, c.head = true, head
		return nil, nil
	}

	n, err := strconv.Atoi(head.Data[partsKey])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("the metering checkpoint ConfigMap %s/%s has no valid %q key; move it away to start without a checkpoint", c.Namespace, c.Name, partsKey)
	}
	if n > c.MaxParts {
		return nil, fmt.Errorf("the metering checkpoint has %d parts, more than the %d this process may read (--metering-checkpoint-parts)", n, c.MaxParts)
	}
	var data []byte
	switch g := liveGeneration(head); {
	case g >= 0:
		for i := range n {
			if parts[g][i] == nil {
				return nil, fmt.Errorf("the metering checkpoint has %d parts but ConfigMap %s/%s is missing", n, c.Namespace, c.partName(g, i+1))
			}
			data = append(data, parts[g][i].BinaryData[checkpointKey]...)
		}
	case head.Data[generationKey] != "":
		return nil, fmt.Errorf("the metering checkpoint ConfigMap %s/%s names an unknown generation %q; move it away to start without a checkpoint",
			c.Namespace, c.Name, head.Data[generationKey])
	default:
		// In the first ConfigMap, continued (before generations) in
		// Name-1 ….
		data = append(data, head.BinaryData[checkpointKey]...)
		for i := 1; i < n; i++ {
			part, err := c.get(ctx, c.legacyPartName(i))
			if err != nil {
				return nil, err
			}
			if part == nil {
				return nil, fmt.Errorf("the metering checkpoint has %d parts but ConfigMap %s/%s is missing", n, c.Namespace, c.legacyPartName(i))
			}
			data = append(data, part.BinaryData[checkpointKey]...)
		}
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != head.Data[sha256Key] {
		return nil, fmt.Errorf("the parts of the metering checkpoint (%d, named in %s) do not add up to the checksum in %s", n, c.Name, c.Name)
	}
	cp, err := Decode(data)
	if err != nil {
		return nil, err
	}
	c.loaded, c.head = true, head
	return cp, nil
}

// Probe reads the first ConfigMap; that there is none yet is fine.
func (c *ConfigMapStore) Probe(ctx context.Context) error {
	_, err := c.get(ctx, c.Name)
	return err
}

// Save writes a checkpoint that fits into one ConfigMap into the first
// one; a bigger one into the generation the first ConfigMap does not
// name, after announcing that in the first ConfigMap, and then switches
// the first ConfigMap to it.
func (c *ConfigMapStore) Save(ctx context.Context, cp *Checkpoint) error {
	if !c.loaded {
		return errors.New("the metering checkpoint must be loaded before it is saved")
	}
	data, err := Encode(cp)
	if err != nil {
		return err
	}
	size := c.partBytes
	if size == 0 {
		size = maxPartBytes
	}
	var chunks [][]byte
	for rest := data; len(rest) > 0 || len(chunks) == 0; {
		k := min(size, len(rest))
		chunks = append(chunks, rest[:k])
		rest = rest[k:]
	}
	if len(chunks) > c.MaxParts {
		return fmt.Errorf("the metering checkpoint needs %d ConfigMaps of %d KiB (%d bytes compressed), more than --metering-checkpoint-parts=%d allows; "+
			"raise it (chart value metering.checkpoint.parts), which also lets the Role update the extra ConfigMaps",
			len(chunks), size>>10, len(data), c.MaxParts)
	}
	sum := sha256.Sum256(data)
	head := c.object(c.Name, "")
	head.Data = map[string]string{
		partsKey:    strconv.Itoa(len(chunks)),
		sha256Key:   hex.EncodeToString(sum[:]),
		lastPassKey: cp.LastPass.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		pendingKey:  strconv.Itoa(len(cp.Pending)),
	}
	if !cp.Delivered.IsZero() {
		head.Data[deliveredKey] = cp.Delivered.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	if len(chunks) == 1 {
		head.BinaryData = map[string][]byte{checkpointKey: chunks[0]}
		return c.writeHead(ctx, head)
	}

	g := 0
	if liveGeneration(c.head) == 0 {
		g = 1
	}
	head.Data[generationKey] = generations[g]
	if err := c.announce(ctx, generations[g]+" "+head.Data[sha256Key]); err != nil {
		return err
	}
	for i, chunk := range chunks {
		part := c.object(c.partName(g, i+1), c.partVersions[g][i])
		part.BinaryData = map[string][]byte{checkpointKey: chunk}
		if err := c.write(ctx, part); err != nil {
			return err
		}
		c.partVersions[g][i] = part.ResourceVersion
	}
	return c.writeHead(ctx, head)
}

func (c *ConfigMapStore) object(name, resourceVersion string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: c.Namespace, Name: name, ResourceVersion: resourceVersion,
		Labels: map[string]string{"app.kubernetes.io/name": "meshstack-operator", "app.kubernetes.io/component": "metering"},
	}}
}

// announce says in the first ConfigMap which generation is being written,
// keeping the checkpoint it names. It is fenced like every write, so a
// deposed process stops before it writes any part, and it changes the
// first ConfigMap's resourceVersion, so that an older write of it that
// may still be on its way fails. Where there is no first ConfigMap (none
// yet, or deleted under this process), it creates one that holds no
// checkpoint; a create fails if another process created one meanwhile.
func (c *ConfigMapStore) announce(ctx context.Context, writing string) error {
	var err error
	if c.head != nil {
		next := c.head.DeepCopy()
		if next.Data == nil {
			next.Data = map[string]string{}
		}
		next.Data[writingKey] = writing
		if err = c.Writer.Update(ctx, next); err == nil {
			c.head = next
			return nil
		}
		if !apierrors.IsNotFound(err) {
			return c.writeError(next, err)
		}
		c.Log.Info("WARNING: the metering checkpoint ConfigMap was deleted while this process metered; creating it again "+
			"from what this process holds, so nothing counted is lost", "configMap", c.Namespace+"/"+c.Name)
		checkpointRecreated.Inc()
	}
	next := c.object(c.Name, "")
	next.Data = map[string]string{writingKey: writing}
	if err := c.Writer.Create(ctx, next); err != nil {
		return c.writeError(next, err)
	}
	c.head = next
	return nil
}

// writeHead writes the first ConfigMap: the commit point of a save.
func (c *ConfigMapStore) writeHead(ctx context.Context, head *corev1.ConfigMap) error {
	if c.head != nil {
		head.ResourceVersion = c.head.ResourceVersion
	}
	if err := c.write(ctx, head); err != nil {
		return err
	}
	c.head = head
	return nil
}

// write creates or updates one ConfigMap, fenced by its resourceVersion.
//
// A ConfigMap deleted under the running leader (by hand: the metering
// identity may not delete) is created again from this process's state,
// which holds everything counted, so nothing is lost; a create fails if
// another process created it meanwhile, which fences this one.
func (c *ConfigMapStore) write(ctx context.Context, cm *corev1.ConfigMap) error {
	var err error
	if cm.ResourceVersion == "" {
		err = c.Writer.Create(ctx, cm)
	} else {
		err = c.Writer.Update(ctx, cm)
		if apierrors.IsNotFound(err) {
			c.Log.Info("WARNING: the metering checkpoint ConfigMap was deleted while this process metered; creating it again "+
				"from what this process holds, so nothing counted is lost", "configMap", cm.Namespace+"/"+cm.Name)
			checkpointRecreated.Inc()
			cm.ResourceVersion = ""
			err = c.Writer.Create(ctx, cm)
		}
	}
	return c.writeError(cm, err)
}

// writeError wraps a failed write; a conflict or a name taken by a create
// means this process's view of the checkpoint is no longer the truth.
func (c *ConfigMapStore) writeError(cm *corev1.ConfigMap, err error) error {
	switch {
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("writing the metering checkpoint ConfigMap %s/%s: %w: %w", cm.Namespace, cm.Name, ErrFenced, err)
	case err != nil:
		return fmt.Errorf("writing the metering checkpoint ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}
