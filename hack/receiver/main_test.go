package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	meteringsink "github.com/meshcloud/meshstack-operator/internal/metering/sink"
	meteringusage "github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// loseFirstAnswers lets the receiver handle every request but answers the
// first n POSTs with 503, as when the acknowledgement is lost on the way
// back: the meter then sends the batch again under the same key.
func loseFirstAnswers(h http.Handler, n int) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		lose := req.Method == http.MethodPost && n > 0
		if lose {
			n--
		}
		mu.Unlock()
		if !lose {
			h.ServeHTTP(w, req)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		http.Error(w, "the answer got lost", http.StatusServiceUnavailable)
	})
}

// keyLog records the Idempotency-Key and the record ids of every POST.
type keyLog struct {
	mu   sync.Mutex
	keys []string
}

func (l *keyLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		l.mu.Lock()
		l.keys = append(l.keys, req.Header.Get("Idempotency-Key"))
		l.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// sink is the meter's real HTTP output, fast to retry.
func sink(t *testing.T, url string, batchSize int) *meteringsink.HTTP {
	t.Helper()
	s, err := meteringsink.NewHTTP(meteringsink.HTTPOptions{URL: url + "/usage", BatchSize: batchSize, Log: logr.Discard(),
		InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	march10 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	march31 = time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)
	april1  = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

// usage is what one cluster metered in each window: the same namespace
// names in both clusters.
func usage() map[string]*meteringusage.Usage {
	return map[string]*meteringusage.Usage{
		"acme-shop":  {PodSeconds: 3600, CPURequestCoreSeconds: 1800, MemoryRequestByteSeconds: 1 << 40, Samples: 60},
		"globex-web": {PodSeconds: 7200, CPURequestCoreSeconds: 900, Samples: 120, StorageByteSeconds: 1 << 30},
		"monitoring": {PodSeconds: 100, Samples: 2}, // not <customer>-<project>
	}
}

// deliver sends the records of three windows, as the meter of cluster does.
func deliver(t *testing.T, s *meteringsink.HTTP, cluster string) {
	t.Helper()
	for _, start := range []time.Time{march10, march31, april1} {
		if err := s.Deliver(context.Background(), meteringusage.WindowRecords(cluster, start, start.Add(time.Hour), usage())); err != nil {
			t.Fatal(err)
		}
	}
}

// Two clusters meter namespaces of the same names in the same windows and
// POST them to one receiver, through answers that get lost (so batches are
// sent twice under one key), and one cluster's meter delivers a window again
// after a "restart", once with the same batches and once with other ones:
// every record is counted exactly once, the two clusters' records have
// distinct ids, and the sums per customer, project and month add both
// clusters.
func TestTwoClustersOneReceiver(t *testing.T) {
	rc := NewReceiver()
	var keys keyLog
	srv := httptest.NewServer(keys.wrap(loseFirstAnswers(rc.Handler(), 2)))
	t.Cleanup(srv.Close)

	deliver(t, sink(t, srv.URL, 1), "eu-1")
	deliver(t, sink(t, srv.URL, 2), "us-1")
	// After a restart: the same window again, in the same batches (same
	// keys), and in other batches (other keys, same ids).
	again := meteringusage.WindowRecords("eu-1", march10, march10.Add(time.Hour), usage())
	if err := sink(t, srv.URL, 1).Deliver(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if err := sink(t, srv.URL, 3).Deliver(context.Background(), again); err != nil {
		t.Fatal(err)
	}

	// Distinct ids: 2 clusters × 3 windows × 3 namespaces, each counted.
	ids, duplicates := rc.Counted()
	if ids != 18 {
		t.Errorf("%d distinct record ids counted, want 18", ids)
	}
	// The two lost answers were retried under the same key.
	keys.mu.Lock()
	if keys.keys[0] != keys.keys[1] || keys.keys[1] != keys.keys[2] {
		t.Errorf("the first POST and its retries had keys %q, want one key", keys.keys[:3])
	}
	keys.mu.Unlock()
	// The redelivery in other batches: 3 records known by id.
	if duplicates != 3 {
		t.Errorf("%d records refused as known ids, want 3 (the window delivered again in other batches)", duplicates)
	}

	tot := func(month, customer, project, unattributed string, podSeconds, cpu, mem, storage float64, records int, clusters ...string) Total {
		return Total{Key: Key{Month: month, Customer: customer, Project: project, Unattributed: unattributed},
			PodSeconds: podSeconds, CPURequestCoreSeconds: cpu, MemoryRequestByteSeconds: mem, StorageByteSeconds: storage,
			Records: records, Clusters: clusters}
	}
	// March has two windows of each cluster, April one.
	want := []Total{
		tot("2026-03", "", "", "eu-1/monitoring", 2*100, 0, 0, 0, 2, "eu-1"),
		tot("2026-03", "", "", "us-1/monitoring", 2*100, 0, 0, 0, 2, "us-1"),
		tot("2026-03", "acme", "shop", "", 4*3600, 4*1800, 4<<40, 0, 4, "eu-1", "us-1"),
		tot("2026-03", "globex", "web", "", 4*7200, 4*900, 0, 4<<30, 4, "eu-1", "us-1"),
		tot("2026-04", "", "", "eu-1/monitoring", 100, 0, 0, 0, 1, "eu-1"),
		tot("2026-04", "", "", "us-1/monitoring", 100, 0, 0, 0, 1, "us-1"),
		tot("2026-04", "acme", "shop", "", 2*3600, 2*1800, 2<<40, 0, 2, "eu-1", "us-1"),
		tot("2026-04", "globex", "web", "", 2*7200, 2*900, 0, 2<<30, 2, "eu-1", "us-1"),
	}
	if diff := cmp.Diff(want, rc.Totals()); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
}

// Without --metering-cluster two clusters' records of the same namespace and
// window have one id, and a receiver that de-duplicates by id counts only
// the first cluster's: what the cluster name is for.
func TestTwoClustersWithoutANameLoseUsage(t *testing.T) {
	rc := NewReceiver()
	srv := httptest.NewServer(rc.Handler())
	t.Cleanup(srv.Close)
	records := meteringusage.WindowRecords("", march10, march10.Add(time.Hour), usage())
	// Each cluster's meter with its own batch size: other keys, same ids.
	if err := sink(t, srv.URL, 1).Deliver(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	if err := sink(t, srv.URL, 2).Deliver(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	if ids, duplicates := rc.Counted(); ids != 3 || duplicates != 3 {
		t.Errorf("%d ids counted and %d dropped, want 3 and 3", ids, duplicates)
	}
}

func TestReceiverRefusals(t *testing.T) {
	rc := NewReceiver()
	rc.Token = "s3cret"
	srv := httptest.NewServer(rc.Handler())
	t.Cleanup(srv.Close)
	post := func(key, token, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/usage", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	good := `{"id":"a","cluster":"eu-1","namespace":"acme-shop","customerIdentifier":"acme","projectIdentifier":"shop",` +
		`"windowStart":"2026-03-01T10:00:00Z","windowEnd":"2026-03-01T11:00:00Z","windowRecords":1,"podSeconds":5}` + "\n"
	for _, tt := range []struct {
		name, key, token, body string
		want                   int
	}{
		{"no token", "k1", "", good, http.StatusUnauthorized},
		{"wrong token", "k1", "guess", good, http.StatusUnauthorized},
		{"no key", "", "s3cret", good, http.StatusBadRequest},
		{"not JSON", "k1", "s3cret", good + "garbage\n", http.StatusBadRequest},
		{"not a record", "k1", "s3cret", good + `{"podSeconds":1}` + "\n", http.StatusBadRequest},
	} {
		if got := post(tt.key, tt.token, tt.body); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	// A refused batch counted nothing, not even its good first line.
	if len(rc.Totals()) != 0 {
		t.Errorf("refused batches were counted: %+v", rc.Totals())
	}
	if got := post("k1", "s3cret", good); got != http.StatusOK {
		t.Errorf("good batch: status %d", got)
	}
	if got := rc.Totals(); len(got) != 1 || got[0].PodSeconds != 5 {
		t.Errorf("totals %+v, want 5 pod-seconds of acme/shop", got)
	}
}
