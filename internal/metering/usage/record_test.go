package usage

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshcloud/meshstack-operator/internal/metering/attribution"
)

func TestSplitIdentifiers(t *testing.T) {
	tests := []struct {
		namespace         string
		customer, project string
		ok                bool
	}{
		{"acme-shop", "acme", "shop", true},
		{"acme42-shop7", "acme42", "shop7", true},
		{"a-b", "a", "b", true},
		{"acme", "", "", false},
		{"acme-shop-dev", "", "", false}, // identifiers have no dashes, so this is no project namespace
		{"Acme-shop", "", "", false},
		{"acme_x-shop", "", "", false},
		{"-shop", "", "", false},
		{"acme-", "", "", false},
		{"kube-system", "kube", "system", true}, // the name rule cannot tell; see docs/usage-records.md
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.namespace, func(t *testing.T) {
			customer, project, ok := attribution.SplitIdentifiers(tt.namespace)
			if diff := cmp.Diff([]any{tt.customer, tt.project, tt.ok}, []any{customer, project, ok}); diff != "" {
				t.Errorf("SplitIdentifiers(%q) (-want +got):\n%s", tt.namespace, diff)
			}
		})
	}
}

func TestRecordID(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	id := RecordID("", "acme-shop", start, start.Add(time.Hour))
	// Without a cluster the id is the one of every release before
	// --metering-cluster (the example in docs/usage-records.md), so that an upgrade does
	// not deliver the window in flight under a new id.
	old := sha256.Sum256([]byte("acme-shop/2026-03-01T10:00:00Z/2026-03-01T11:00:00Z"))
	if want := hex.EncodeToString(old[:])[:32]; id != want || id != "fb548e2c616de743b0c4e6aecc0d7aeb" {
		t.Fatalf("RecordID without a cluster = %q, want the old formula's %q", id, want)
	}
	// With one, the documented formula.
	withCluster := sha256.Sum256([]byte("eu-1/acme-shop/2026-03-01T10:00:00Z/2026-03-01T11:00:00Z"))
	if got, want := RecordID("eu-1", "acme-shop", start, start.Add(time.Hour)), hex.EncodeToString(withCluster[:])[:32]; got != want {
		t.Errorf("RecordID with cluster eu-1 = %q, want %q", got, want)
	}
	// Deterministic, whatever the time zone of the inputs.
	berlin := time.FixedZone("CET", 3600)
	if again := RecordID("", "acme-shop", start.In(berlin), start.Add(time.Hour).In(berlin)); again != id {
		t.Errorf("RecordID is not deterministic: %q != %q", again, id)
	}
	ids := map[string]string{id: "no cluster"}
	for name, other := range map[string]string{
		"other namespace":  RecordID("", "acme-shop2", start, start.Add(time.Hour)),
		"other start":      RecordID("", "acme-shop", start.Add(time.Hour), start.Add(2*time.Hour)),
		"other window end": RecordID("", "acme-shop", start, start.Add(2*time.Hour)),
		"cluster a":        RecordID("a", "acme-shop", start, start.Add(time.Hour)),
		"cluster b":        RecordID("b", "acme-shop", start, start.Add(time.Hour)),
		// The cluster and the namespace do not run into each other.
		"cluster a-acme, namespace shop":  RecordID("a-acme", "shop", start, start.Add(time.Hour)),
		"cluster a, namespace acme-shop2": RecordID("a", "acme-shop2", start, start.Add(time.Hour)),
	} {
		if first, dup := ids[other]; dup {
			t.Errorf("%s: same id %q as %s", name, other, first)
		}
		ids[other] = name
	}
}

func TestValidateCluster(t *testing.T) {
	for _, ok := range []string{"", "eu-1", "prod", "a", strings.Repeat("c", 63), "0cluster"} {
		if err := ValidateCluster(ok); err != nil {
			t.Errorf("ValidateCluster(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"EU-1", "eu/1", "eu_1", "eu.1", "-eu", "eu-", "eu 1", strings.Repeat("c", 64), "eu\n1", "é"} {
		if err := ValidateCluster(bad); err == nil || !strings.Contains(err.Error(), "--metering-cluster") {
			t.Errorf("ValidateCluster(%q) = %v, want a refusal naming the flag", bad, err)
		}
	}
}

func TestWindowRecordsJSON(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	records := WindowRecords("", start, start.Add(time.Hour), map[string]*Usage{
		"zeta": {PodSeconds: 1, Samples: 1, StorageByteSeconds: 3 << 30,
			StorageByteSecondsByClass: map[string]float64{"": 1 << 30, "fast": 2 << 30}},
		"acme-shop": {PodSeconds: 3600, CPURequestCoreSeconds: 1800, MemoryRequestByteSeconds: 1 << 62, Samples: 60},
	})
	data, err := MarshalJSONLines(records)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + RecordID("", "acme-shop", start, start.Add(time.Hour)) + `","namespace":"acme-shop","customerIdentifier":"acme","projectIdentifier":"shop",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":3600,"cpuRequestCoreSeconds":1800,"memoryRequestByteSeconds":4611686018427388000,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"ephemeralStorageRequestByteSeconds":0,"ephemeralStorageLimitByteSeconds":0,"samples":60,"storageByteSeconds":0}` + "\n" +
		`{"id":"` + RecordID("", "zeta", start, start.Add(time.Hour)) + `","namespace":"zeta",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":1,"cpuRequestCoreSeconds":0,"memoryRequestByteSeconds":0,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"ephemeralStorageRequestByteSeconds":0,"ephemeralStorageLimitByteSeconds":0,"samples":1,` +
		`"storageByteSeconds":3221225472,"storageByteSecondsByClass":{"":1073741824,"fast":2147483648}}` + "\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("JSON Lines (-want +got):\n%s", diff)
	}
}

// With --metering-cluster every record names the cluster, after its id,
// and has the id with the cluster; the rest is as without.
func TestWindowRecordsWithCluster(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	usage := map[string]*Usage{"acme-shop": {PodSeconds: 3600, Samples: 60}, "zeta": {PodSeconds: 1, Samples: 1}}
	data, err := MarshalJSONLines(WindowRecords("eu-1", start, start.Add(time.Hour), usage))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"16559086b686a2eb69a6102433fdc587","cluster":"eu-1","namespace":"acme-shop","customerIdentifier":"acme","projectIdentifier":"shop",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":3600,"cpuRequestCoreSeconds":0,"memoryRequestByteSeconds":0,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"ephemeralStorageRequestByteSeconds":0,"ephemeralStorageLimitByteSeconds":0,"samples":60,"storageByteSeconds":0}` + "\n" +
		`{"id":"` + RecordID("eu-1", "zeta", start, start.Add(time.Hour)) + `","cluster":"eu-1","namespace":"zeta",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":1,"cpuRequestCoreSeconds":0,"memoryRequestByteSeconds":0,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"ephemeralStorageRequestByteSeconds":0,"ephemeralStorageLimitByteSeconds":0,"samples":1,"storageByteSeconds":0}` + "\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("JSON Lines (-want +got):\n%s", diff)
	}
	other := WindowRecords("us-1", start, start.Add(time.Hour), usage)
	if mine := WindowRecords("eu-1", start, start.Add(time.Hour), usage); mine[0].ID == other[0].ID || mine[1].ID == other[1].ID {
		t.Errorf("two clusters share ids: %q, %q", mine[0].ID, other[0].ID)
	}
}
