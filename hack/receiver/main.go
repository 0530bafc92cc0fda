// Command receiver is an example billing receiver for the meter's HTTP output
// (--metering-output=https://…): it accepts the POSTed JSON Lines, counts
// every record once however often it arrives, and sums usage per customer,
// project and month across all clusters that send to it.
//
// Run it next to a meter (plain http:// is allowed to loopback only):
//
//	go run ./hack/receiver --listen=127.0.0.1:8080
//	meshstack-operator --components=metering --metering-cluster=eu-1 \
//	    --metering-output=http://127.0.0.1:8080/usage ...
//	curl -s http://127.0.0.1:8080/totals
//
// or with --tls-cert-file and --tls-key-file behind an https:// URL.
//
// It de-duplicates twice, as docs/usage-records.md ("HTTP output") advises:
//
//   - by Idempotency-Key: a retried POST (the meter did not see the answer,
//     or a new leader delivers the window again) is answered 200 and not
//     counted again;
//   - by record id: a window delivered again in other batches (after a
//     restart with another --metering-http-batch-size) has other keys but
//     the same ids.
//
// Record ids include --metering-cluster, so the same namespace and window of
// two clusters are two records; without a cluster name they would share an
// id and the second cluster's usage would be dropped here.
//
// Everything lives in memory and grows with the records received: a real
// receiver keeps the keys and ids in its database, for example as unique
// keys written in the same transaction as the sums.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxBody bounds a request: the meter sends at most
// --metering-http-batch-size records (1000 by default, well under 1 MiB).
const maxBody = 32 << 20

// record holds the fields of a usage record (docs/usage-records.md) that
// this receiver uses.
type record struct {
	ID                       string    `json:"id"`
	Cluster                  string    `json:"cluster"`
	Namespace                string    `json:"namespace"`
	CustomerIdentifier       string    `json:"customerIdentifier"`
	ProjectIdentifier        string    `json:"projectIdentifier"`
	WindowStart              time.Time `json:"windowStart"`
	WindowEnd                time.Time `json:"windowEnd"`
	PodSeconds               float64   `json:"podSeconds"`
	CPURequestCoreSeconds    float64   `json:"cpuRequestCoreSeconds"`
	MemoryRequestByteSeconds float64   `json:"memoryRequestByteSeconds"`
	CPULimitCoreSeconds      float64   `json:"cpuLimitCoreSeconds"`
	MemoryLimitByteSeconds   float64   `json:"memoryLimitByteSeconds"`
	StorageByteSeconds       float64   `json:"storageByteSeconds"`
}

// Key is what usage is summed by. Records that name no customer and project
// (namespaces not named <customer>-<project>) are summed per cluster and
// namespace under Unattributed instead, for someone to look at.
type Key struct {
	Month        string `json:"month"` // of windowStart, UTC: 2026-03
	Customer     string `json:"customer,omitempty"`
	Project      string `json:"project,omitempty"`
	Unattributed string `json:"unattributed,omitempty"` // <cluster>/<namespace>
}

// Total is the usage of one Key.
type Total struct {
	Key
	PodSeconds               float64  `json:"podSeconds"`
	CPURequestCoreSeconds    float64  `json:"cpuRequestCoreSeconds"`
	MemoryRequestByteSeconds float64  `json:"memoryRequestByteSeconds"`
	CPULimitCoreSeconds      float64  `json:"cpuLimitCoreSeconds"`
	MemoryLimitByteSeconds   float64  `json:"memoryLimitByteSeconds"`
	StorageByteSeconds       float64  `json:"storageByteSeconds"`
	Records                  int      `json:"records"`
	Clusters                 []string `json:"clusters"`
}

// Receiver is the HTTP handler: POST /usage takes records, GET /totals
// returns the sums.
type Receiver struct {
	// Token, when set, is the bearer token every POST must carry
	// (--metering-http-bearer-token-file on the meter's side).
	Token string

	mu     sync.Mutex
	keys   map[string]bool
	ids    map[string]bool
	totals map[Key]*Total
	// Duplicates counts records not counted because their id was known.
	duplicates int
}

// NewReceiver returns an empty receiver.
func NewReceiver() *Receiver {
	return &Receiver{keys: map[string]bool{}, ids: map[string]bool{}, totals: map[Key]*Total{}}
}

// Handler serves /usage and /totals.
func (rc *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /usage", rc.post)
	mux.HandleFunc("GET /totals", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rc.Totals())
	})
	return mux
}

// post takes one batch. It is all or nothing: a batch with a line that is
// not a record is refused with 400 and nothing of it is counted (the meter
// logs the answer and keeps the window until the receiver is fixed).
func (rc *Receiver) post(w http.ResponseWriter, req *http.Request) {
	if rc.Token != "" && req.Header.Get("Authorization") != "Bearer "+rc.Token {
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	key := req.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "no Idempotency-Key", http.StatusBadRequest)
		return
	}
	records, err := parse(http.MaxBytesReader(w, req.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.keys[key] {
		// A retry of a batch already counted: acknowledge it again. A
		// failed write means the sender has gone; it retries with the same
		// key, so there is nothing to undo.
		_, _ = fmt.Fprintln(w, `{"duplicate":true}`)
		return
	}
	counted := 0
	for _, r := range records {
		if rc.ids[r.ID] {
			rc.duplicates++
			continue
		}
		rc.ids[r.ID] = true
		rc.add(r)
		counted++
	}
	rc.keys[key] = true
	// A failed write means the sender has gone: the batch stays counted and
	// its retry (same key) is acknowledged as a duplicate.
	_, _ = fmt.Fprintf(w, "{\"counted\":%d,\"duplicates\":%d}\n", counted, len(records)-counted)
}

// parse reads JSON Lines of records.
func parse(body io.Reader) ([]record, error) {
	var records []record
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxBody)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if r.ID == "" || r.Namespace == "" || r.WindowStart.IsZero() {
			return nil, fmt.Errorf("line %d: not a usage record (no id, namespace or windowStart)", line)
		}
		records = append(records, r)
	}
	return records, sc.Err()
}

// add sums a record into its total; the caller holds rc.mu.
func (rc *Receiver) add(r record) {
	k := Key{Month: r.WindowStart.UTC().Format("2006-01"), Customer: r.CustomerIdentifier, Project: r.ProjectIdentifier}
	if k.Customer == "" || k.Project == "" {
		k = Key{Month: k.Month, Unattributed: r.Cluster + "/" + r.Namespace}
	}
	t := rc.totals[k]
	if t == nil {
		t = &Total{Key: k}
		rc.totals[k] = t
	}
	t.PodSeconds += r.PodSeconds
	t.CPURequestCoreSeconds += r.CPURequestCoreSeconds
	t.MemoryRequestByteSeconds += r.MemoryRequestByteSeconds
	t.CPULimitCoreSeconds += r.CPULimitCoreSeconds
	t.MemoryLimitByteSeconds += r.MemoryLimitByteSeconds
	t.StorageByteSeconds += r.StorageByteSeconds
	t.Records++
	if !slices.Contains(t.Clusters, r.Cluster) {
		t.Clusters = append(t.Clusters, r.Cluster)
		slices.Sort(t.Clusters)
	}
}

// Counted returns how many distinct record ids were counted and how many
// records were not because their id was known.
func (rc *Receiver) Counted() (ids, duplicates int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.ids), rc.duplicates
}

// Totals returns the sums, ordered by month, then customer and project (the
// unattributed namespaces, with none, first).
func (rc *Receiver) Totals() []Total {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]Total, 0, len(rc.totals))
	for _, t := range rc.totals {
		c := *t
		c.Clusters = slices.Clone(t.Clusters)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Total) int {
		return strings.Compare(a.Month+"\x00"+a.Customer+"\x00"+a.Project+"\x00"+a.Unattributed,
			b.Month+"\x00"+b.Customer+"\x00"+b.Project+"\x00"+b.Unattributed)
	})
	return out
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "Address to listen on.")
	certFile := flag.String("tls-cert-file", "", "PEM certificate to serve HTTPS with (with --tls-key-file); plain HTTP when empty.")
	keyFile := flag.String("tls-key-file", "", "PEM key of --tls-cert-file.")
	tokenFile := flag.String("bearer-token-file", "", "File with the bearer token every POST must carry; none when empty.")
	flag.Parse()

	rc := NewReceiver()
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatal(err)
		}
		rc.Token = strings.TrimSpace(string(b))
	}
	srv := &http.Server{Addr: *listen, Handler: rc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("receiving usage records on %s: POST /usage, GET /totals", *listen)
	var err error
	if *certFile != "" {
		err = srv.ListenAndServeTLS(*certFile, *keyFile)
	} else {
		err = srv.ListenAndServe()
	}
	log.Fatal(err)
}
