package metering

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{"kube-system", "kube", "system", true}, // the name rule cannot tell; see the README
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.namespace, func(t *testing.T) {
			customer, project, ok := SplitIdentifiers(tt.namespace)
			if diff := cmp.Diff([]any{tt.customer, tt.project, tt.ok}, []any{customer, project, ok}); diff != "" {
				t.Errorf("SplitIdentifiers(%q) (-want +got):\n%s", tt.namespace, diff)
			}
		})
	}
}

func TestRecordID(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	id := RecordID("acme-shop", start, start.Add(time.Hour))
	if len(id) != 32 {
		t.Fatalf("id %q has %d characters, want 32", id, len(id))
	}
	// Deterministic, whatever the time zone of the inputs.
	berlin := time.FixedZone("CET", 3600)
	if again := RecordID("acme-shop", start.In(berlin), start.Add(time.Hour).In(berlin)); again != id {
		t.Errorf("RecordID is not deterministic: %q != %q", again, id)
	}
	for name, other := range map[string]string{
		"other namespace":  RecordID("acme-shop2", start, start.Add(time.Hour)),
		"other start":      RecordID("acme-shop", start.Add(time.Hour), start.Add(2*time.Hour)),
		"other window end": RecordID("acme-shop", start, start.Add(2*time.Hour)),
	} {
		if other == id {
			t.Errorf("%s: same id %q", name, id)
		}
	}
}

func TestWindowRecordsJSON(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	records := windowRecords(start, start.Add(time.Hour), map[string]*Usage{
		"zeta": {PodSeconds: 1, Samples: 1, StorageByteSeconds: 3 << 30,
			StorageByteSecondsByClass: map[string]float64{"": 1 << 30, "fast": 2 << 30}},
		"acme-shop": {PodSeconds: 3600, CPURequestCoreSeconds: 1800, MemoryRequestByteSeconds: 1 << 62, Samples: 60},
	})
	data, err := encodeWindow(records)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + RecordID("acme-shop", start, start.Add(time.Hour)) + `","namespace":"acme-shop","customerIdentifier":"acme","projectIdentifier":"shop",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":3600,"cpuRequestCoreSeconds":1800,"memoryRequestByteSeconds":4611686018427388000,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"samples":60,"storageByteSeconds":0}` + "\n" +
		`{"id":"` + RecordID("zeta", start, start.Add(time.Hour)) + `","namespace":"zeta",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":2,` +
		`"podSeconds":1,"cpuRequestCoreSeconds":0,"memoryRequestByteSeconds":0,"cpuLimitCoreSeconds":0,"memoryLimitByteSeconds":0,"samples":1,` +
		`"storageByteSeconds":3221225472,"storageByteSecondsByClass":{"":1073741824,"fast":2147483648}}` + "\n"
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("JSON Lines (-want +got):\n%s", diff)
	}
}
