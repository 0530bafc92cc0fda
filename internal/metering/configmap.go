package metering

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
// informer cache.
//
// +kubebuilder:rbac:groups="",namespace=meshcloud,resources=configmaps,verbs=get;update,resourceNames=meshstack-metering;meshstack-metering-1;meshstack-metering-2;meshstack-metering-3;meshstack-metering-4;meshstack-metering-5;meshstack-metering-6;meshstack-metering-7
// +kubebuilder:rbac:groups="",namespace=meshcloud,resources=configmaps,verbs=create

// Defaults of the checkpoint flags.
const (
	DefaultCheckpointName  = "meshstack-metering"
	DefaultCheckpointParts = 8
)

const (
	// checkpointKey holds (a part of) the gzipped checkpoint.
	checkpointKey = "checkpoint.json.gz"
	// Keys of the first ConfigMap that say what the checkpoint is made of,
	// and, for people, how far it has got.
	partsKey     = "parts"
	sha256Key    = "sha256"
	lastPassKey  = "lastPass"
	deliveredKey = "delivered"
	pendingKey   = "pendingWindows"
	// maxPartBytes keeps each ConfigMap well below the API server's 1 MiB
	// limit on a ConfigMap's data.
	maxPartBytes = 900 << 10
)

// ConfigMapCheckpoint keeps the checkpoint in ConfigMaps: Name holds the
// first part and says how many parts there are and the SHA-256 of the
// whole; a checkpoint too big for one ConfigMap continues in Name-1,
// Name-2, and so on, up to MaxParts ConfigMaps in all.
//
// Every write is an update with the resourceVersion this store last read or
// wrote (a create where there was nothing), so a process that lost its
// leadership gets a conflict instead of overwriting the new leader's
// checkpoint. The first ConfigMap is written last: until it is, the
// previous checkpoint stands.
type ConfigMapCheckpoint struct {
	// Reader reads past the informer cache; Writer creates and updates.
	Reader    client.Reader
	Writer    client.Writer
	Namespace string
	Name      string
	// MaxParts is the number of ConfigMaps the checkpoint may take, as many
	// as the Role's resourceNames allow.
	MaxParts int
	// Log says when a deleted part is recreated.
	Log logr.Logger

	// resourceVersions of the parts as last read or written; "" where the
	// ConfigMap does not exist.
	resourceVersions []string
	// partBytes overrides maxPartBytes in tests.
	partBytes int
}

var _ CheckpointStore = &ConfigMapCheckpoint{}

// Describe names the checkpoint's ConfigMap.
func (c *ConfigMapCheckpoint) Describe() string {
	return fmt.Sprintf("ConfigMap %s/%s", c.Namespace, c.Name)
}

func (c *ConfigMapCheckpoint) partName(i int) string {
	if i == 0 {
		return c.Name
	}
	return fmt.Sprintf("%s-%d", c.Name, i)
}

// Load reads every part the store may use, so that later saves know each
// part's resourceVersion.
func (c *ConfigMapCheckpoint) Load(ctx context.Context) (*Checkpoint, error) {
	if c.MaxParts < 1 {
		return nil, fmt.Errorf("the checkpoint needs at least one ConfigMap, got MaxParts=%d", c.MaxParts)
	}
	c.resourceVersions = make([]string, c.MaxParts)
	parts := make([]*corev1.ConfigMap, c.MaxParts)
	for i := range parts {
		cm := &corev1.ConfigMap{}
		err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.partName(i)}, cm)
		switch {
		case apierrors.IsNotFound(err):
			if i == 0 {
				return nil, nil
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("reading the metering checkpoint ConfigMap %s/%s: %w", c.Namespace, c.partName(i), err)
		}
		parts[i], c.resourceVersions[i] = cm, cm.ResourceVersion
	}

	first := parts[0]
	n, err := strconv.Atoi(first.Data[partsKey])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("the metering checkpoint ConfigMap %s/%s has no valid %q key; move it away to start without a checkpoint", c.Namespace, c.Name, partsKey)
	}
	if n > c.MaxParts {
		return nil, fmt.Errorf("the metering checkpoint has %d parts, more than the %d this process may read (--metering-checkpoint-parts)", n, c.MaxParts)
	}
	var data []byte
	for i := range n {
		if parts[i] == nil {
			return nil, fmt.Errorf("the metering checkpoint has %d parts but ConfigMap %s/%s is missing", n, c.Namespace, c.partName(i))
		}
		data = append(data, parts[i].BinaryData[checkpointKey]...)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != first.Data[sha256Key] {
		return nil, fmt.Errorf("the parts of the metering checkpoint (%s and %d more) do not add up to the checksum in %s", c.Name, n-1, c.Name)
	}
	return decodeCheckpoint(data)
}

// Probe reads the first ConfigMap; that there is none yet is fine.
func (c *ConfigMapCheckpoint) Probe(ctx context.Context) error {
	err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Name}, &corev1.ConfigMap{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the metering checkpoint ConfigMap %s/%s: %w", c.Namespace, c.Name, err)
	}
	return nil
}

// Save writes the parts after the first, then the first.
func (c *ConfigMapCheckpoint) Save(ctx context.Context, cp *Checkpoint) error {
	if c.resourceVersions == nil {
		return errors.New("the metering checkpoint must be loaded before it is saved")
	}
	data, err := encodeCheckpoint(cp)
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
	for i := len(chunks) - 1; i >= 0; i-- {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: c.Namespace, Name: c.partName(i), ResourceVersion: c.resourceVersions[i],
				Labels: map[string]string{"app.kubernetes.io/name": "meshstack-operator", "app.kubernetes.io/component": "metering"},
			},
			BinaryData: map[string][]byte{checkpointKey: chunks[i]},
		}
		if i == 0 {
			cm.Data = map[string]string{
				partsKey:    strconv.Itoa(len(chunks)),
				sha256Key:   hex.EncodeToString(sum[:]),
				lastPassKey: cp.LastPass.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
				pendingKey:  strconv.Itoa(len(cp.Pending)),
			}
			if !cp.Delivered.IsZero() {
				cm.Data[deliveredKey] = cp.Delivered.UTC().Format("2006-01-02T15:04:05Z07:00")
			}
		}
		if err := c.write(ctx, cm); err != nil {
			return err
		}
		c.resourceVersions[i] = cm.ResourceVersion
	}
	return nil
}

// write creates or updates one part, fenced by its resourceVersion.
//
// A part deleted under the running leader (by hand: the metering identity
// may not delete) is created again from this process's state, which holds
// everything counted, so nothing is lost; a create fails if another
// process created the part meanwhile, which fences this one.
func (c *ConfigMapCheckpoint) write(ctx context.Context, cm *corev1.ConfigMap) error {
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
	switch {
	// A conflict or a name taken by a create: this process's view of the
	// checkpoint is no longer the truth.
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("writing the metering checkpoint ConfigMap %s/%s: %w: %w", cm.Namespace, cm.Name, ErrFenced, err)
	case err != nil:
		return fmt.Errorf("writing the metering checkpoint ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}
