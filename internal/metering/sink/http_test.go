package sink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// httpT0 is the start of the first window the HTTP tests deliver.
var httpT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// httpWindow is the window starting hour hours after httpT0 with n records.
func httpWindow(hour, n int) []usage.Record {
	start := httpT0.Add(time.Duration(hour) * time.Hour)
	end := start.Add(time.Hour)
	records := make([]usage.Record, n)
	for i := range records {
		ns := fmt.Sprintf("cust%05d-proj", i)
		records[i] = usage.Record{ID: usage.RecordID("", ns, start, end), Namespace: ns, CustomerIdentifier: fmt.Sprintf("cust%05d", i),
			ProjectIdentifier: "proj", WindowStart: start, WindowEnd: end, WindowRecords: n,
			Usage: usage.Usage{PodSeconds: float64(i), CPURequestCoreSeconds: 0.5 * float64(i), Samples: 1}}
	}
	return records
}

// hangUp, as a status, makes the receiver close the connection without
// answering.
const hangUp = -1

// httpRequest is a request the receiver got, and the status it answered.
type httpRequest struct {
	key, contentType, auth, clientCN string
	body                             []byte
	at                               time.Time
	code                             int
}

// httpReceiver records requests and answers them as respond says.
type httpReceiver struct {
	// respond answers request i (from 0) with a status and a body; nil
	// accepts every request.
	respond func(i int, r *http.Request, h http.Header) (int, string)
	// arrived gets the index of every request as it arrives.
	arrived chan int

	mu       sync.Mutex
	requests []httpRequest
}

func newHTTPReceiver(respond func(i int, r *http.Request, h http.Header) (int, string)) *httpReceiver {
	return &httpReceiver{respond: respond, arrived: make(chan int, 10000)}
}

func (rc *httpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := httpRequest{key: r.Header.Get("Idempotency-Key"), contentType: r.Header.Get("Content-Type"),
		auth: r.Header.Get("Authorization"), body: body, at: time.Now()}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	rc.mu.Lock()
	i := len(rc.requests)
	rc.requests = append(rc.requests, req)
	rc.mu.Unlock()
	rc.arrived <- i

	code, text := http.StatusOK, ""
	if rc.respond != nil {
		code, text = rc.respond(i, r, w.Header())
	}
	rc.mu.Lock()
	rc.requests[i].code = code
	rc.mu.Unlock()
	if code == hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

// all is every request so far.
func (rc *httpReceiver) all() []httpRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]httpRequest(nil), rc.requests...)
}

// accepted is the requests answered 2xx.
func (rc *httpReceiver) accepted() []httpRequest {
	var ok []httpRequest
	for _, r := range rc.all() {
		if r.code >= 200 && r.code < 300 {
			ok = append(ok, r)
		}
	}
	return ok
}

// wait waits for request i to arrive.
func (rc *httpReceiver) wait(t *testing.T, i int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case j := <-rc.arrived:
			if j >= i {
				return
			}
		case <-timeout:
			t.Fatalf("request %d did not arrive", i)
		}
	}
}

// startHTTPReceiver serves rc over TLS on 127.0.0.1 with httptest's
// certificate, and returns the server and a CA file that trusts it.
func startHTTPReceiver(t *testing.T, rc *httpReceiver) (*httptest.Server, string) {
	t.Helper()
	srv := newQuietServer(rc)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, writeHTTPFile(t, "ca.pem", pemBlock("CERTIFICATE", srv.Certificate().Raw))
}

// newQuietServer is an unstarted server that does not log the handshake
// errors that some tests cause on purpose.
func newQuietServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	return srv
}

func writeHTTPFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// httpLog collects log lines and reports each as it is written.
type httpLog struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newHTTPLog() *httpLog { return &httpLog{ch: make(chan string, 10000)} }

func (l *httpLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
		select {
		case l.ch <- args:
		default:
		}
	}, funcr.Options{})
}

func (l *httpLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitFor waits for n more lines that contain s.
func (l *httpLog) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for n > 0 {
		select {
		case line := <-l.ch:
			if strings.Contains(line, s) {
				n--
			}
		case <-timeout:
			t.Fatalf("no log line with %q; the log:\n%s", s, l)
		}
	}
}

// retryWaits is the retryIn of every logged failure, in order.
func retryWaits(t *testing.T, log string) []time.Duration {
	t.Helper()
	matches := regexp.MustCompile(`"retryIn"="([^"]+)"`).FindAllStringSubmatch(log, -1)
	waits := make([]time.Duration, 0, len(matches))
	for _, m := range matches {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, d)
	}
	return waits
}

// httpTestOptions are options with short backoffs.
func httpTestOptions(url, caFile string, log logr.Logger) HTTPOptions {
	return HTTPOptions{URL: url, CAFile: caFile, Log: log,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, RequestTimeout: 5 * time.Second}
}

func newTestHTTPSink(t *testing.T, o HTTPOptions) *HTTP {
	t.Helper()
	s, err := NewHTTP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// deliverAsync runs Deliver in the background.
func deliverAsync(ctx context.Context, s Sink, records []usage.Record) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Deliver(ctx, records) }()
	return done
}

func waitDelivered(t *testing.T, done <-chan error, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		t.Fatalf("Deliver did not return within %s", timeout)
		return nil
	}
}

// parseBody decodes the JSON Lines of a request.
func parseBody(t *testing.T, body []byte) []usage.Record {
	t.Helper()
	var records []usage.Record
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	for dec.More() {
		var r usage.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("parsing a request body: %v", err)
		}
		records = append(records, r)
	}
	return records
}

// failures is the delivery failure counter of a code.
func failures(code string) float64 {
	return testutil.ToFloat64(deliveryFailures.WithLabelValues(code))
}

func keysOf(requests []httpRequest) []string {
	keys := make([]string, len(requests))
	for i, r := range requests {
		keys[i] = r.key
	}
	return keys
}

func TestHTTPSinkRetriesUntilEveryBatchIsAccepted(t *testing.T) {
	rc := newHTTPReceiver(func(i int, _ *http.Request, h http.Header) (int, string) {
		switch i {
		case 0: // batch 0
			// A new connection for the next request, so that its drop
			// reaches the sink rather than being retried by the transport.
			h.Set("Connection", "close")
			return http.StatusInternalServerError, "overloaded"
		case 1: // batch 0 again
			return hangUp, ""
		case 3: // batch 1
			return http.StatusServiceUnavailable, "restarting"
		}
		return http.StatusOK, ""
	})
	srv, caFile := startHTTPReceiver(t, rc)
	before500, before503, beforeErr := failures("500"), failures("503"), failures("error")

	o := httpTestOptions(srv.URL, caFile, logr.Discard())
	o.BatchSize = 2
	records := httpWindow(0, 5)
	if err := newTestHTTPSink(t, o).Deliver(context.Background(), records); err != nil {
		t.Fatal(err)
	}

	all := rc.all()
	codes := make([]int, 0, len(all))
	for _, r := range all {
		codes = append(codes, r.code)
	}
	if diff := cmp.Diff([]int{500, hangUp, 200, 503, 200, 200}, codes); diff != "" {
		t.Fatalf("answers (-want +got):\n%s", diff)
	}
	k := keysOf(all)
	if k[0] != k[1] || k[1] != k[2] || k[3] != k[4] {
		t.Errorf("the retries of a batch have different keys: %q", k)
	}
	if k[2] == k[4] || k[4] == k[5] || k[2] == k[5] {
		t.Errorf("different batches have the same key: %q", k)
	}
	var got []usage.Record
	for i, r := range rc.accepted() {
		batch := parseBody(t, r.body)
		if want := min(2, len(records)-2*i); len(batch) != want {
			t.Errorf("batch %d has %d records, want %d", i, len(batch), want)
		}
		got = append(got, batch...)
	}
	if diff := cmp.Diff(records, got); diff != "" {
		t.Errorf("accepted records (-want +got):\n%s", diff)
	}
	for code, want := range map[string]float64{"500": before500 + 1, "503": before503 + 1, "error": beforeErr + 1} {
		if got := failures(code); got != want {
			t.Errorf("delivery failures with code %s: %v, want %v", code, got, want)
		}
	}

	// Another sink, as after a restart or on a new leader, sends the same
	// batches with the same keys.
	rc2 := newHTTPReceiver(nil)
	srv2, caFile2 := startHTTPReceiver(t, rc2)
	o2 := httpTestOptions(srv2.URL, caFile2, logr.Discard())
	o2.BatchSize = 2
	if err := newTestHTTPSink(t, o2).Deliver(context.Background(), records); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keysOf(rc.accepted()), keysOf(rc2.all())); diff != "" {
		t.Errorf("keys of another sink (-first +second):\n%s", diff)
	}
}

func TestHTTPSinkIdempotencyKey(t *testing.T) {
	w := httpWindow(0, 3)
	sum := sha256.Sum256([]byte("meshstack-metering-batch/v1\n2026-03-01T10:00:00Z\n2026-03-01T11:00:00Z\n1\n2\n" +
		w[1].ID + "\n" + w[2].ID + "\n"))
	if got, want := idempotencyKey(w[1:], 1), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("idempotencyKey = %s, want the documented %s", got, want)
	}
	keys := map[string]string{}
	for name, key := range map[string]string{
		"batch 0":        idempotencyKey(w[:2], 0),
		"batch 1":        idempotencyKey(w[:2], 1),
		"other records":  idempotencyKey(w[1:], 0),
		"fewer records":  idempotencyKey(w[:1], 0),
		"another window": idempotencyKey(httpWindow(1, 3)[:2], 0),
	} {
		if other, ok := keys[key]; ok {
			t.Errorf("%s and %s have the same key", name, other)
		}
		keys[key] = name
	}
	if diff := cmp.Diff(idempotencyKey(w[:2], 0), idempotencyKey(httpWindow(0, 3)[:2], 0)); diff != "" {
		t.Errorf("the key of a recomputed window changed:\n%s", diff)
	}
}

// With --metering-cluster the key has the documented extra line, and the
// same window of two clusters has two keys.
func TestHTTPSinkIdempotencyKeyWithCluster(t *testing.T) {
	start := httpT0
	byNS := map[string]*usage.Usage{"acme-shop": {PodSeconds: 1, Samples: 1}, "globex-web": {PodSeconds: 2, Samples: 1}}
	eu := usage.WindowRecords("eu-1", start, start.Add(time.Hour), byNS)
	us := usage.WindowRecords("us-1", start, start.Add(time.Hour), byNS)
	none := usage.WindowRecords("", start, start.Add(time.Hour), byNS)
	sum := sha256.Sum256([]byte("meshstack-metering-batch/v1\ncluster eu-1\n2026-03-01T10:00:00Z\n2026-03-01T11:00:00Z\n0\n2\n" +
		eu[0].ID + "\n" + eu[1].ID + "\n"))
	if got, want := idempotencyKey(eu, 0), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("idempotencyKey with a cluster = %s, want the documented %s", got, want)
	}
	// Without a cluster: the key of the releases before the flag.
	sum = sha256.Sum256([]byte("meshstack-metering-batch/v1\n2026-03-01T10:00:00Z\n2026-03-01T11:00:00Z\n0\n2\n" +
		none[0].ID + "\n" + none[1].ID + "\n"))
	if got, want := idempotencyKey(none, 0), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("idempotencyKey without a cluster = %s, want the old %s", got, want)
	}
	if idempotencyKey(eu, 0) == idempotencyKey(us, 0) || idempotencyKey(eu, 0) == idempotencyKey(none, 0) {
		t.Errorf("two clusters share a key")
	}
}

func TestHTTPSinkWaitsForTheReceiverToComeBack(t *testing.T) {
	rc := newHTTPReceiver(nil)
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	serve := func(l net.Listener) *httptest.Server {
		srv := newQuietServer(rc)
		_ = srv.Listener.Close()
		srv.Listener = l
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	srv := serve(l)
	caFile := writeHTTPFile(t, "ca.pem", pemBlock("CERTIFICATE", srv.Certificate().Raw))
	log := newHTTPLog()
	s := newTestHTTPSink(t, httpTestOptions(srv.URL, caFile, log.logger()))
	if err := s.Deliver(context.Background(), httpWindow(0, 2)); err != nil {
		t.Fatal(err)
	}

	srv.Close()
	beforeErr := failures("error")
	done := deliverAsync(context.Background(), s, httpWindow(1, 2))
	log.waitFor(t, "Delivering metering records failed", 3)
	select {
	case err := <-done:
		t.Fatalf("Deliver returned %v while the receiver was down", err)
	default:
	}
	if got := failures("error"); got < beforeErr+3 {
		t.Errorf("delivery failures with code error: %v, want at least %v", got, beforeErr+3)
	}
	// The waits double from the initial backoff, less up to a fifth of
	// jitter.
	waits := retryWaits(t, log.String())
	for i, want := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		if i >= len(waits) || waits[i] > want || waits[i] < want*8/10 {
			t.Errorf("waits %v, want %v, doubling", waits, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond})
			break
		}
	}

	l, err = (&net.ListenConfig{}).Listen(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s again: %v", addr, err)
	}
	serve(l)
	if err := waitDelivered(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	accepted := rc.accepted()
	if len(accepted) != 2 {
		t.Fatalf("%d requests accepted, want 2", len(accepted))
	}
	if diff := cmp.Diff(httpWindow(1, 2), parseBody(t, accepted[1].body)); diff != "" {
		t.Errorf("records delivered after the restart (-want +got):\n%s", diff)
	}
}

func TestHTTPSinkHonoursRetryAfter(t *testing.T) {
	// The fake clock is on a whole second, as HTTP dates are.
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		code       int
		retryAfter string
		maxBackoff time.Duration
		// The retry waits from minWait to maxWait on the sink's clock.
		minWait, maxWait time.Duration
	}{
		{name: "429 with seconds", code: 429, retryAfter: "1",
			maxBackoff: 5 * time.Second, minWait: time.Second, maxWait: time.Second},
		{name: "503 with an HTTP date", code: 503, retryAfter: now.Add(2 * time.Second).Format(http.TimeFormat),
			maxBackoff: 5 * time.Second, minWait: 2 * time.Second, maxWait: 2 * time.Second},
		{name: "capped by the max backoff", code: 429, retryAfter: "3600",
			maxBackoff: 200 * time.Millisecond, minWait: 200 * time.Millisecond, maxWait: 200 * time.Millisecond},
		{name: "a date in the past is the usual jittered backoff", code: 429,
			retryAfter: now.Add(-time.Hour).Format(http.TimeFormat),
			maxBackoff: 5 * time.Second, minWait: 8 * time.Millisecond, maxWait: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newHTTPReceiver(func(i int, _ *http.Request, h http.Header) (int, string) {
				if i == 0 {
					h.Set("Retry-After", tt.retryAfter)
					return tt.code, ""
				}
				return http.StatusOK, ""
			})
			srv, caFile := startHTTPReceiver(t, rc)
			clk := clocktesting.NewFakeClock(now)
			o := httpTestOptions(srv.URL, caFile, logr.Discard())
			o.MaxBackoff = tt.maxBackoff
			o.Clock = clk
			done := deliverAsync(context.Background(), newTestHTTPSink(t, o), httpWindow(0, 1))

			waitForTimer(t, clk)
			clk.Step(tt.minWait - time.Nanosecond)
			if !clk.HasWaiters() {
				t.Fatalf("retried before %s", tt.minWait)
			}
			clk.Step(tt.maxWait - tt.minWait + time.Nanosecond)
			if err := waitDelivered(t, done, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if all := rc.all(); len(all) != 2 {
				t.Fatalf("%d requests, want 2", len(all))
			}
		})
	}
}

// waitForTimer waits until the sink waits on clk to retry.
func waitForTimer(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return clk.HasWaiters(), nil })
	if err != nil {
		t.Fatalf("the sink did not wait to retry: %v", err)
	}
}

func TestHTTPRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{" 7 ", 7 * time.Second},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-90 * time.Second).Format(http.TimeFormat), 0},
		{"99999999999999999", 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.header, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestHTTPSinkRetriesRejectedBatchesAtTheMaxInterval(t *testing.T) {
	long := "schema mismatch: " + strings.Repeat("x", 5000)
	var fixed atomic.Bool
	rc := newHTTPReceiver(func(i int, _ *http.Request, _ http.Header) (int, string) {
		switch {
		case i == 0:
			return http.StatusBadRequest, "invalid record: missing usage"
		case !fixed.Load():
			return http.StatusUnprocessableEntity, long
		}
		return http.StatusOK, ""
	})
	srv, caFile := startHTTPReceiver(t, rc)
	log := newHTTPLog()
	o := httpTestOptions(srv.URL, caFile, log.logger())
	o.MaxBackoff = 300 * time.Millisecond
	before400, before422 := failures("400"), failures("422")

	done := deliverAsync(context.Background(), newTestHTTPSink(t, o), httpWindow(0, 3))
	// The receiver is fixed while the sink waits to retry after its second
	// 422.
	log.waitFor(t, `"code"="422"`, 2)
	fixed.Store(true)
	if err := waitDelivered(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	all := rc.all()
	if len(all) < 4 || len(rc.accepted()) != 1 {
		t.Fatalf("%d requests and %d accepted, want at least 4 and 1", len(all), len(rc.accepted()))
	}
	for i := 1; i < len(all); i++ {
		if gap := all[i].at.Sub(all[i-1].at); gap < 240*time.Millisecond {
			t.Errorf("request %d came %s after the one before, want about the max backoff of %s", i, gap, o.MaxBackoff)
		}
		if all[i].key != all[0].key {
			t.Errorf("request %d has key %s, want %s", i, all[i].key, all[0].key)
		}
	}
	logged := log.String()
	for _, want := range []string{`"code"="400"`, "invalid record: missing usage", `"code"="422"`,
		"schema mismatch: xxx", "(truncated)", `"attempt"=2`, `"batch"=0`, `"windowStart"="2026-03-01T10:00:00Z"`} {
		if !strings.Contains(logged, want) {
			t.Errorf("the log has no %q:\n%.3000s", want, logged)
		}
	}
	if strings.Contains(logged, strings.Repeat("x", maxLoggedBody+1)) {
		t.Errorf("the log has the whole long body")
	}
	if got := failures("400"); got != before400+1 {
		t.Errorf("delivery failures with code 400: %v, want %v", got, before400+1)
	}
	if got := failures("422"); got < before422+2 {
		t.Errorf("delivery failures with code 422: %v, want at least %v", got, before422+2)
	}
}

func TestHTTPSinkBatches(t *testing.T) {
	tests := []struct {
		name      string
		batchSize int
		records   int
		want      []int
	}{
		{name: "2500 records in batches of 1000", batchSize: 1000, records: 2500, want: []int{1000, 1000, 500}},
		{name: "the default batch size is 1000", batchSize: 0, records: 2500, want: []int{1000, 1000, 500}},
		{name: "exactly one batch", batchSize: 1000, records: 1000, want: []int{1000}},
		{name: "one record", batchSize: 3, records: 1, want: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newHTTPReceiver(nil)
			srv, caFile := startHTTPReceiver(t, rc)
			o := httpTestOptions(srv.URL, caFile, logr.Discard())
			o.BatchSize = tt.batchSize
			records := httpWindow(0, tt.records)
			if err := newTestHTTPSink(t, o).Deliver(context.Background(), records); err != nil {
				t.Fatal(err)
			}

			lines := make([]int, 0, len(rc.all()))
			var body []byte
			keys := map[string]bool{}
			for _, r := range rc.all() {
				if r.contentType != "application/x-ndjson" {
					t.Errorf("Content-Type %q", r.contentType)
				}
				if len(r.key) != 64 || keys[r.key] {
					t.Errorf("Idempotency-Key %q is not a new SHA-256", r.key)
				}
				keys[r.key] = true
				lines = append(lines, bytes.Count(r.body, []byte("\n")))
				body = append(body, r.body...)
			}
			if diff := cmp.Diff(tt.want, lines); diff != "" {
				t.Errorf("lines per request (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(records, parseBody(t, body)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			file, err := usage.MarshalJSONLines(records)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, body) {
				t.Errorf("the requests are not the file output's lines")
			}
		})
	}
}

func TestHTTPSinkBearerToken(t *testing.T) {
	var expected = "token-1"
	rc := newHTTPReceiver(nil)
	rc.respond = func(_ int, r *http.Request, _ http.Header) (int, string) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+expected {
			return http.StatusUnauthorized, "bad token"
		}
		return http.StatusOK, ""
	}
	srv, caFile := startHTTPReceiver(t, rc)
	tokenFile := writeHTTPFile(t, "token", []byte("token-1\n"))
	log := newHTTPLog()
	o := httpTestOptions(srv.URL, caFile, log.logger())
	o.BearerTokenFile = tokenFile
	s := newTestHTTPSink(t, o)
	if err := s.Deliver(context.Background(), httpWindow(0, 1)); err != nil {
		t.Fatal(err)
	}

	// The receiver wants a new token, which the sink reads once it is
	// written, as the kubelet does: to a new file renamed into place.
	rc.mu.Lock()
	expected = "token-2"
	rc.mu.Unlock()
	done := deliverAsync(context.Background(), s, httpWindow(1, 1))
	log.waitFor(t, `"code"="401"`, 1)
	tmp := tokenFile + ".new"
	if err := os.WriteFile(tmp, []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, tokenFile); err != nil {
		t.Fatal(err)
	}
	if err := waitDelivered(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	auths := make([]string, 0, len(rc.accepted()))
	for _, r := range rc.accepted() {
		auths = append(auths, r.auth)
	}
	if diff := cmp.Diff([]string{"Bearer token-1", "Bearer token-2"}, auths); diff != "" {
		t.Errorf("accepted Authorization headers (-want +got):\n%s", diff)
	}
}

func TestHTTPSinkCAFile(t *testing.T) {
	tests := []struct {
		name    string
		caFile  bool
		wantErr error
	}{
		{name: "the CA file makes the server trusted", caFile: true},
		{name: "without it the server is not trusted", caFile: false, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newHTTPReceiver(nil)
			srv, caFile := startHTTPReceiver(t, rc)
			if !tt.caFile {
				caFile = ""
			}
			log := newHTTPLog()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := newTestHTTPSink(t, httpTestOptions(srv.URL, caFile, log.logger())).Deliver(ctx, httpWindow(0, 1))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Deliver = %v, want %v", err, tt.wantErr)
			}
			if got, want := len(rc.accepted()), map[bool]int{true: 1, false: 0}[tt.caFile]; got != want {
				t.Errorf("%d requests accepted, want %d", got, want)
			}
			if !tt.caFile && !strings.Contains(log.String(), "certificate") {
				t.Errorf("the log does not say why:\n%s", log)
			}
		})
	}
}

// httpTestCA issues certificates.
type httpTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newHTTPTestCA(t *testing.T) *httpTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metering test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &httpTestCA{cert: cert, key: key, file: writeHTTPFile(t, "ca.pem", pemBlock("CERTIFICATE", der))}
}

// issue returns a PEM certificate and key for cn, for 127.0.0.1 when the
// usage is server authentication.
func (ca *httpTestCA) issue(t *testing.T, cn string, extUsage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{extUsage}}
	if extUsage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER)
}

func TestHTTPSinkMutualTLS(t *testing.T) {
	ca := newHTTPTestCA(t)
	rc := newHTTPReceiver(func(int, *http.Request, http.Header) (int, string) {
		return http.StatusOK, ""
	})
	srv := newQuietServer(rc)
	serverCert, serverKey := ca.issue(t, "receiver", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	// Every request on a new connection, so with a new handshake.
	srv.Config.SetKeepAlivesEnabled(false)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeClient := func(certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeClient(ca.issue(t, "client-1", x509.ExtKeyUsageClientAuth))
	log := newHTTPLog()
	o := httpTestOptions(srv.URL, ca.file, log.logger())
	o.ClientCertFile, o.ClientKeyFile = certFile, keyFile
	s := newTestHTTPSink(t, o)
	deliver := func(hour int) {
		t.Helper()
		if err := s.Deliver(context.Background(), httpWindow(hour, 1)); err != nil {
			t.Fatal(err)
		}
	}
	deliver(0)

	// A rotated certificate is used from the next handshake on.
	client2Cert, client2Key := ca.issue(t, "client-2", x509.ExtKeyUsageClientAuth)
	writeClient(client2Cert, client2Key)
	deliver(1)

	// A pair that does not match, as half-way through a rotation, keeps the
	// last good one.
	client3Cert, _ := ca.issue(t, "client-3", x509.ExtKeyUsageClientAuth)
	writeClient(client3Cert, client2Key)
	deliver(2)
	if !strings.Contains(log.String(), "Reloading the metering client certificate failed") {
		t.Errorf("the failed reload is not logged:\n%s", log)
	}

	cns := make([]string, 0, len(rc.all()))
	for _, r := range rc.all() {
		cns = append(cns, r.clientCN)
	}
	if diff := cmp.Diff([]string{"client-1", "client-2", "client-2"}, cns); diff != "" {
		t.Errorf("client certificates (-want +got):\n%s", diff)
	}

	// Without a client certificate the server refuses the handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = newTestHTTPSink(t, httpTestOptions(srv.URL, ca.file, logr.Discard())).Deliver(ctx, httpWindow(3, 1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver without a client certificate = %v, want %v", err, context.DeadlineExceeded)
	}
	if n := len(rc.all()); n != 3 {
		t.Errorf("%d requests reached the receiver, want 3", n)
	}
}

func TestHTTPSinkReturnsWhenCtxIsDone(t *testing.T) {
	tests := []struct {
		name string
		// block makes the receiver answer only when the request is
		// cancelled.
		block bool
		// cancelFirst cancels before Deliver is called.
		cancelFirst bool
		wantReqs    int
	}{
		{name: "while waiting to retry", wantReqs: 1},
		{name: "during a request", block: true, wantReqs: 1},
		{name: "before delivering", cancelFirst: true, wantReqs: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			rc := newHTTPReceiver(func(_ int, r *http.Request, _ http.Header) (int, string) {
				if tt.block {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}
				return http.StatusServiceUnavailable, ""
			})
			srv, caFile := startHTTPReceiver(t, rc)
			t.Cleanup(func() { close(release) }) // before srv.Close waits for the handler
			log := newHTTPLog()
			o := httpTestOptions(srv.URL, caFile, log.logger())
			o.InitialBackoff, o.MaxBackoff, o.RequestTimeout = time.Minute, time.Minute, time.Minute
			s := newTestHTTPSink(t, o)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelFirst {
				cancel()
			}
			done := deliverAsync(ctx, s, httpWindow(0, 1))
			switch {
			case tt.block:
				rc.wait(t, 0)
				cancel()
			case !tt.cancelFirst:
				log.waitFor(t, "Delivering metering records failed", 1)
				cancel()
			}
			if err := waitDelivered(t, done, 2*time.Second); !errors.Is(err, context.Canceled) {
				t.Errorf("Deliver = %v, want %v", err, context.Canceled)
			}
			if n := len(rc.all()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}

func TestNewHTTPSinkErrors(t *testing.T) {
	ca := newHTTPTestCA(t)
	certPEM, keyPEM := ca.issue(t, "client", x509.ExtKeyUsageClientAuth)
	_, otherKeyPEM := ca.issue(t, "other", x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeHTTPFile(t, "tls.crt", certPEM), writeHTTPFile(t, "tls.key", keyPEM)
	otherKeyFile := writeHTTPFile(t, "other.key", otherKeyPEM)
	tokenFile, emptyFile := writeHTTPFile(t, "token", []byte("secret\n")), writeHTTPFile(t, "empty", []byte("\n"))
	missing := filepath.Join(t.TempDir(), "missing")
	const url = "https://metering.example.com/usage"

	tests := []struct {
		name    string
		o       HTTPOptions
		wantErr string
	}{
		{name: "everything set", o: HTTPOptions{URL: url, BatchSize: 10, BearerTokenFile: tokenFile, CAFile: ca.file,
			ClientCertFile: certFile, ClientKeyFile: keyFile}},
		{name: "only a URL", o: HTTPOptions{URL: url}},
		{name: "plain http to another host", o: HTTPOptions{URL: "http://metering.example.com/usage"},
			wantErr: "--metering-output"},
		{name: "negative batch size", o: HTTPOptions{URL: url, BatchSize: -1}, wantErr: "--metering-http-batch-size"},
		{name: "missing token file", o: HTTPOptions{URL: url, BearerTokenFile: missing},
			wantErr: "--metering-http-bearer-token-file"},
		{name: "empty token file", o: HTTPOptions{URL: url, BearerTokenFile: emptyFile},
			wantErr: "--metering-http-bearer-token-file"},
		{name: "missing CA file", o: HTTPOptions{URL: url, CAFile: missing}, wantErr: "--metering-http-ca-file"},
		{name: "CA file without certificates", o: HTTPOptions{URL: url, CAFile: tokenFile},
			wantErr: "--metering-http-ca-file"},
		{name: "certificate without key", o: HTTPOptions{URL: url, ClientCertFile: certFile},
			wantErr: "must be set together"},
		{name: "key without certificate", o: HTTPOptions{URL: url, ClientKeyFile: keyFile},
			wantErr: "must be set together"},
		{name: "key of another certificate", o: HTTPOptions{URL: url, ClientCertFile: certFile, ClientKeyFile: otherKeyFile},
			wantErr: "--metering-http-client-cert-file"},
		{name: "missing key file", o: HTTPOptions{URL: url, ClientCertFile: certFile, ClientKeyFile: missing},
			wantErr: "--metering-http-client-key-file"},
		{name: "backoffs out of order", o: HTTPOptions{URL: url, InitialBackoff: time.Minute, MaxBackoff: time.Second},
			wantErr: "backoffs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewHTTP(tt.o)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewHTTP = %v, want %q", err, tt.wantErr)
			}
			if s != nil {
				_ = s.Close()
			}
		})
	}
}

func TestValidateHTTPOutput(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"https://metering.example.com/usage", ""},
		{"https://10.1.2.3:8443/v1/usage?tenant=a", ""},
		{"HTTPS://Metering.Example.com/", ""},
		{"https://user:secret@metering.example.com/", ""},
		{"http://127.0.0.1:8080/usage", ""},
		{"http://127.3.2.1/", ""},
		{"http://[::1]:8080/", ""},
		{"http://localhost:9000/", ""},
		{"http://LocalHost/", ""},
		{"http://metering.example.com/usage", "only to a loopback host"},
		{"http://10.0.0.1/", "only to a loopback host"},
		{"http://128.0.0.1/", "only to a loopback host"},
		{"http://localhost.example.com/", "only to a loopback host"},
		{"http://user:secret@metering.example.com/", "only to a loopback host"},
		{"https://", "has no host"},
		{"https:///usage", "has no host"},
		{"https://:8443/", "has no host"},
		{"https:metering.example.com", "has no host"},
		{"ftp://metering.example.com/", "must be an https:// URL"},
		{"metering.example.com/usage", "must be an https:// URL"},
		{"https://metering example.com/", "not a valid URL"},
		{"https://[::1/", "not a valid URL"},
	}
	for _, tt := range tests {
		err := ValidateHTTPOutput(tt.url)
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateHTTPOutput(%q) = %v, want %q", tt.url, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--metering-output") {
			t.Errorf("ValidateHTTPOutput(%q) = %v, which does not name the flag", tt.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ValidateHTTPOutput(%q) = %v, which shows the password", tt.url, err)
		}
	}
}

func TestIsHTTPOutput(t *testing.T) {
	for output, want := range map[string]bool{
		"-":                         false,
		"/var/lib/metering/usage":   false,
		"usage.jsonl":               false,
		"httpd.log":                 false,
		"./http://x":                false,
		"http://127.0.0.1:8080/":    true,
		"https://metering.example/": true,
		"HTTPS://metering.example/": true,
		"https://":                  true,
	} {
		if got := IsHTTPOutput(output); got != want {
			t.Errorf("IsHTTPOutput(%q) = %v, want %v", output, got, want)
		}
	}
}
