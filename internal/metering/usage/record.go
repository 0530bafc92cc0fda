package usage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshcloud/meshstack-operator/internal/metering/attribution"
)

// Usage is what the pods of one namespace reserved during one window. The
// resource figures are integrals over time: a pod requesting 2 cores for
// 30 seconds adds 60 core-seconds.
type Usage struct {
	// PodSeconds is the time the pods ran: from their startTime to their
	// end (see billedSpan).
	PodSeconds float64 `json:"podSeconds"`
	// CPURequestCoreSeconds integrates the pods' effective CPU requests.
	CPURequestCoreSeconds float64 `json:"cpuRequestCoreSeconds"`
	// MemoryRequestByteSeconds integrates the pods' effective memory requests.
	MemoryRequestByteSeconds float64 `json:"memoryRequestByteSeconds"`
	// CPULimitCoreSeconds integrates the pods' effective CPU limits; a pod
	// without a CPU limit adds nothing.
	CPULimitCoreSeconds float64 `json:"cpuLimitCoreSeconds"`
	// MemoryLimitByteSeconds integrates the pods' effective memory limits;
	// a pod without a memory limit adds nothing.
	MemoryLimitByteSeconds float64 `json:"memoryLimitByteSeconds"`
	// EphemeralStorageRequestByteSeconds and
	// EphemeralStorageLimitByteSeconds integrate the pods' effective
	// ephemeral-storage requests and limits.
	EphemeralStorageRequestByteSeconds float64 `json:"ephemeralStorageRequestByteSeconds"`
	EphemeralStorageLimitByteSeconds   float64 `json:"ephemeralStorageLimitByteSeconds"`
	// ExtendedResourceRequestSeconds and ExtendedResourceLimitSeconds
	// integrate, per resource name, the pods' effective requests and limits
	// of extended resources (nvidia.com/gpu, amd.com/gpu, any domain/name
	// resource outside kubernetes.io): a pod holding one GPU for an hour
	// adds 3600 to "nvidia.com/gpu". Omitted when no pod had any.
	ExtendedResourceRequestSeconds map[string]float64 `json:"extendedResourceRequestSeconds,omitempty"`
	ExtendedResourceLimitSeconds   map[string]float64 `json:"extendedResourceLimitSeconds,omitempty"`
	// Samples is the number of (pass, pod) observations that contributed.
	Samples int64 `json:"samples"`
	// StorageByteSeconds integrates the capacity of the namespace's Bound
	// PersistentVolumeClaims (with --metering-resources including
	// persistentvolumeclaims); StorageByteSecondsByClass splits it by
	// storage class, the claims without a class under "".
	StorageByteSeconds        float64            `json:"storageByteSeconds"`
	StorageByteSecondsByClass map[string]float64 `json:"storageByteSecondsByClass,omitempty"`

	// Attribution is whose the usage is, as the latest pass that counted
	// it found; nil in windows a release before attribution counted. The
	// record carries it in fields of its own.
	Attribution *attribution.Attribution `json:"-"`
}

func (u *Usage) add(o *Usage) {
	u.PodSeconds += o.PodSeconds
	u.CPURequestCoreSeconds += o.CPURequestCoreSeconds
	u.MemoryRequestByteSeconds += o.MemoryRequestByteSeconds
	u.CPULimitCoreSeconds += o.CPULimitCoreSeconds
	u.MemoryLimitByteSeconds += o.MemoryLimitByteSeconds
	u.EphemeralStorageRequestByteSeconds += o.EphemeralStorageRequestByteSeconds
	u.EphemeralStorageLimitByteSeconds += o.EphemeralStorageLimitByteSeconds
	u.Samples += o.Samples
	u.StorageByteSeconds += o.StorageByteSeconds
	addByName(&u.StorageByteSecondsByClass, o.StorageByteSecondsByClass)
	addByName(&u.ExtendedResourceRequestSeconds, o.ExtendedResourceRequestSeconds)
	addByName(&u.ExtendedResourceLimitSeconds, o.ExtendedResourceLimitSeconds)
	if o.Attribution != nil {
		u.Attribution = o.Attribution
	}
}

// addByName adds the figures of from to those of the same name in *to.
func addByName(to *map[string]float64, from map[string]float64) {
	for name, v := range from {
		if *to == nil {
			*to = make(map[string]float64, len(from))
		}
		(*to)[name] += v
	}
}

// Sanitize sets every figure that is negative or not finite to 0 and
// returns the names of those it set.
func (u *Usage) Sanitize() []string {
	var bad []string
	fix := func(name string, v *float64) {
		if !finite(*v) {
			*v = 0
			bad = append(bad, name)
		}
	}
	fix("podSeconds", &u.PodSeconds)
	fix("cpuRequestCoreSeconds", &u.CPURequestCoreSeconds)
	fix("memoryRequestByteSeconds", &u.MemoryRequestByteSeconds)
	fix("cpuLimitCoreSeconds", &u.CPULimitCoreSeconds)
	fix("memoryLimitByteSeconds", &u.MemoryLimitByteSeconds)
	fix("ephemeralStorageRequestByteSeconds", &u.EphemeralStorageRequestByteSeconds)
	fix("ephemeralStorageLimitByteSeconds", &u.EphemeralStorageLimitByteSeconds)
	fix("storageByteSeconds", &u.StorageByteSeconds)
	fixByName := func(field string, m map[string]float64) {
		for name, v := range m {
			if !finite(v) {
				m[name] = 0
				bad = append(bad, field+"."+name)
			}
		}
	}
	fixByName("storageByteSecondsByClass", u.StorageByteSecondsByClass)
	fixByName("extendedResourceRequestSeconds", u.ExtendedResourceRequestSeconds)
	fixByName("extendedResourceLimitSeconds", u.ExtendedResourceLimitSeconds)
	if u.Samples < 0 {
		u.Samples = 0
		bad = append(bad, "samples")
	}
	return bad
}

// Record is one line of the output: the usage of one namespace in one
// window. Its JSON form is the documented record schema.
type Record struct {
	// ID is deterministic (see RecordID), so a consumer can de-duplicate.
	ID string `json:"id"`
	// Cluster is --metering-cluster, the name of the cluster the namespace
	// is in; omitted when it is not set.
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace"`
	// CustomerIdentifier, ProjectIdentifier, LandingZone and Tags say whose
	// the usage is: with AttributedBy "project", from the labels the
	// replicator put on the namespace (the MeshProject's identifiers, its
	// landing zone and its spec.tags); with "namespaceName", from a name
	// <customer>-<project> (--metering-attribution=namespace-name, or when
	// the meter may not list namespaces). All empty for a namespace that is
	// nobody's. Records of windows counted by a release before attribution
	// split the name as it did, without AttributedBy.
	CustomerIdentifier string            `json:"customerIdentifier,omitempty"`
	ProjectIdentifier  string            `json:"projectIdentifier,omitempty"`
	LandingZone        string            `json:"landingZone,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
	AttributedBy       string            `json:"attributedBy,omitempty"`
	// WindowStart and WindowEnd bound the window [start, end), in UTC.
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
	// WindowRecords is the number of records the window has in total. The
	// records of a window are written together, so a reader (and the meter
	// itself, on start) can tell a complete window from a torn write.
	WindowRecords int `json:"windowRecords"`
	Usage
}

// RecordID is the record's id: the first 32 hex digits of the SHA-256 of
// "<namespace>/<windowStart>/<windowEnd>" (RFC 3339, UTC) when cluster is
// empty, the id of every release before --metering-cluster, and of
// "<cluster>/<namespace>/<windowStart>/<windowEnd>" otherwise. The window
// end is part of it so that changing --metering-window never reuses an id;
// the cluster so that the same namespace and window in two clusters have
// two ids. Neither a cluster (a DNS label, see ValidateCluster) nor a
// namespace contains "/", so an id with a cluster is never one without.
func RecordID(cluster, namespace string, start, end time.Time) string {
	window := fmt.Sprintf("%s/%s/%s", namespace, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	if cluster != "" {
		window = cluster + "/" + window
	}
	sum := sha256.Sum256([]byte(window))
	return hex.EncodeToString(sum[:])[:32]
}

// ValidateCluster checks a --metering-cluster value: empty, or a DNS-1123
// label (at most 63 lowercase alphanumerics and "-", starting and ending
// with an alphanumeric), so that it is safe in ids, headers, file names and
// metric labels and cannot contain the "/" that separates the parts of an
// id.
func ValidateCluster(cluster string) error {
	if cluster == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(cluster); len(errs) > 0 {
		return fmt.Errorf("--metering-cluster %q must be a DNS label (lowercase alphanumerics and \"-\", at most 63): %s",
			cluster, strings.Join(errs, "; "))
	}
	return nil
}

// WindowRecords turns the usage of one window into its records, sorted by
// namespace, as the meter delivers them: each names the cluster (empty:
// none) and has the id RecordID gives it.
func WindowRecords(cluster string, start, end time.Time, usage map[string]*Usage) []Record {
	start, end = start.UTC(), end.UTC()
	records := make([]Record, 0, len(usage))
	for ns, u := range usage {
		r := Record{
			ID:          RecordID(cluster, ns, start, end),
			Cluster:     cluster,
			Namespace:   ns,
			WindowStart: start,
			WindowEnd:   end,
			Usage:       *u,
		}
		if a := u.Attribution; a != nil {
			r.CustomerIdentifier, r.ProjectIdentifier, r.LandingZone, r.Tags, r.AttributedBy = a.Customer, a.Project, a.LandingZone, a.Tags, a.By
		} else {
			r.CustomerIdentifier, r.ProjectIdentifier, _ = attribution.SplitIdentifiers(ns)
		}
		records = append(records, r)
	}
	slices.SortFunc(records, func(a, b Record) int { return strings.Compare(a.Namespace, b.Namespace) })
	for i := range records {
		records[i].WindowRecords = len(records)
	}
	return records
}

// Valid reports whether r is a record this package could have written; a
// reader of the output treats anything else as garbage.
func (r *Record) Valid() bool {
	return r.ID != "" && r.Namespace != "" && r.WindowRecords > 0 &&
		!r.WindowStart.IsZero() && r.WindowEnd.After(r.WindowStart)
}

// Valid reports whether every figure is finite and not negative: the usage
// of a namespace this package could have summed.
func (u *Usage) Valid() bool {
	ok := finite
	for _, byName := range []map[string]float64{u.StorageByteSecondsByClass, u.ExtendedResourceRequestSeconds, u.ExtendedResourceLimitSeconds} {
		for _, v := range byName {
			if !ok(v) {
				return false
			}
		}
	}
	return u.Samples >= 0 && ok(u.PodSeconds) && ok(u.CPURequestCoreSeconds) && ok(u.MemoryRequestByteSeconds) &&
		ok(u.CPULimitCoreSeconds) && ok(u.MemoryLimitByteSeconds) && ok(u.StorageByteSeconds) &&
		ok(u.EphemeralStorageRequestByteSeconds) && ok(u.EphemeralStorageLimitByteSeconds)
}

// MarshalJSONLines renders records as JSON Lines, one record a line, in the
// documented record schema: what every output writes.
func MarshalJSONLines(records []Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range records {
		if err := enc.Encode(&records[i]); err != nil {
			return nil, fmt.Errorf("encoding the record of %s: %w", records[i].Namespace, err)
		}
	}
	return buf.Bytes(), nil
}
