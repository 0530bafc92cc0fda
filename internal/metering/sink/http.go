package sink

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/transport"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// DefaultHTTPBatchSize is the default of --metering-http-batch-size.
const DefaultHTTPBatchSize = 1000

// Defaults of the HTTPOptions that have no flag.
const (
	defaultHTTPInitialBackoff = time.Second
	defaultHTTPMaxBackoff     = 5 * time.Minute
	defaultHTTPRequestTimeout = 30 * time.Second
)

// maxLoggedBody is how much of a failed response's body is logged.
const maxLoggedBody = 1024

// ndjsonContentType is the Content-Type of the requests.
const ndjsonContentType = "application/x-ndjson"

var deliveryFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "meshstack_metering_delivery_failures_total",
	Help: "Failed attempts to deliver a batch of usage records to the HTTP metering output, by HTTP status code, or \"error\" when there was no response.",
}, []string{"code"})

func init() {
	metrics.Registry.MustRegister(deliveryFailures)
}

// HTTPOptions configure an HTTP; the zero values of the durations
// and of BatchSize select their defaults.
type HTTPOptions struct {
	// URL is the --metering-output URL (see ValidateHTTPOutput).
	URL string
	// BatchSize is the most records per request (--metering-http-batch-size),
	// DefaultHTTPBatchSize when 0.
	BatchSize int
	// BearerTokenFile holds a token sent as "Authorization: Bearer <token>".
	// It is read by client-go's cached file token source: again for the
	// first request after the token read last is 50 seconds old (a minute
	// less 10 seconds of leeway, by the wall clock: the source takes no
	// clock), which picks up a rotated projected ServiceAccount token well
	// before the kubelet lets the old one expire (it rotates at 80% of the
	// token's life, at least 10 minutes), and again for the next attempt
	// after the receiver answers 401. When a re-read fails, the token read
	// last is sent. The file must hold a token when the sink is made.
	BearerTokenFile string
	// CAFile holds PEM certificates trusted for the server in addition to
	// the system's.
	CAFile string
	// ClientCertFile and ClientKeyFile are a PEM client certificate and key
	// for mutual TLS. Both or neither must be set. A controller-runtime
	// certwatcher serves them: it re-reads them at every TLS handshake (and
	// when they change, or every 10 seconds, until the sink is closed) and
	// uses them once they form a valid pair; until then the pair loaded
	// before stays in use.
	ClientCertFile string
	ClientKeyFile  string
	Log            logr.Logger
	// InitialBackoff (default 1s) is the first wait after a failed request;
	// it doubles with every failure up to MaxBackoff (default 5m).
	// RequestTimeout (default 30s) bounds one request.
	InitialBackoff, MaxBackoff, RequestTimeout time.Duration
	// Clock times the waits between attempts and reads Retry-After dates;
	// the real clock when nil. Tests pass a fake clock and step it.
	Clock clock.Clock
}

// HTTP POSTs each window to a URL as JSON Lines (Content-Type
// application/x-ndjson) in the schema of the file output, in batches of at
// most BatchSize records, in order.
//
// Every request carries an Idempotency-Key header: the SHA-256, in 64 lower
// case hex digits, of the lines
//
//	meshstack-metering-batch/v1
//	cluster <cluster>    (only with --metering-cluster)
//	<windowStart>
//	<windowEnd>
//	<batch index, from 0>
//	<number of records in the batch>
//	<id of the batch's first record>
//	...
//	<id of the batch's last record>
//
// each ended by "\n", with the window bounds in RFC 3339 (UTC, with
// nanoseconds when they have any). Without a cluster the key is the one of
// the releases before --metering-cluster; with one, the same window of two
// clusters has two keys (and its records two ids). Since a window delivered
// again has the same records, a batch sent again, on a retry, after a
// restart or by a new leader, has the same key, and the receiver can
// de-duplicate it (the records' ids allow that too).
//
// A batch is retried until the receiver answers 2xx: after a connection
// error, a timeout, 408, 429 or 5xx with exponential backoff and jitter
// (InitialBackoff doubling up to MaxBackoff; a Retry-After header, in
// seconds or an HTTP date, lengthens the wait up to MaxBackoff); after any
// other status (other 4xx, and 3xx since redirects are not followed) at
// MaxBackoff, logging the response body, so that data is kept until the
// receiver is fixed. Deliver returns only when every batch of the window
// has been acknowledged, or with ctx.Err() when ctx is done.
type HTTP struct {
	url       string
	redacted  string
	batchSize int
	// token is nil without a BearerTokenFile.
	token     transport.ResettableTokenSource
	client    *http.Client
	transport *http.Transport
	log       logr.Logger
	// stopCertWatcher stops the client certificate's watcher; a no-op
	// without one.
	stopCertWatcher func()

	initialBackoff, maxBackoff, requestTimeout time.Duration
	clock                                      clock.Clock
}

// NewHTTP checks the options and loads the CA and client certificate
// files.
func NewHTTP(o HTTPOptions) (*HTTP, error) {
	if err := ValidateHTTPOutput(o.URL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.URL)
	s := &HTTP{
		url:            o.URL,
		redacted:       redactURL(u),
		batchSize:      o.BatchSize,
		log:            o.Log,
		initialBackoff: cmp.Or(o.InitialBackoff, defaultHTTPInitialBackoff),
		maxBackoff:     cmp.Or(o.MaxBackoff, defaultHTTPMaxBackoff),
		requestTimeout: cmp.Or(o.RequestTimeout, defaultHTTPRequestTimeout),
		clock:          o.Clock,
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	switch {
	case o.BatchSize < 0:
		return nil, fmt.Errorf("--metering-http-batch-size must be positive")
	case o.BatchSize == 0:
		s.batchSize = DefaultHTTPBatchSize
	}
	if s.initialBackoff < 0 || s.maxBackoff < s.initialBackoff || s.requestTimeout < 0 {
		return nil, fmt.Errorf("the HTTP sink's backoffs (%s, %s) and request timeout (%s) must be positive and ordered",
			s.initialBackoff, s.maxBackoff, s.requestTimeout)
	}
	token, err := bearerToken(o.BearerTokenFile)
	if err != nil {
		return nil, err
	}
	s.token = token
	tlsConfig, stopCertWatcher, err := newTLSConfig(o)
	if err != nil {
		return nil, err
	}
	s.stopCertWatcher = stopCertWatcher

	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.transport.TLSClientConfig = tlsConfig
	s.client = &http.Client{
		Transport: s.transport,
		// A redirected POST may turn into a GET, and take the token
		// elsewhere: a 3xx is a failure like a 4xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Close closes idle connections and stops watching the client certificate.
func (s *HTTP) Close() error {
	s.transport.CloseIdleConnections()
	s.stopCertWatcher()
	return nil
}

// Deliver sends the window's records batch by batch, in order; see HTTP.
func (s *HTTP) Deliver(ctx context.Context, records []usage.Record) error {
	if len(records) == 0 {
		return nil
	}
	batches := (len(records) + s.batchSize - 1) / s.batchSize
	for i := range batches {
		batch := records[i*s.batchSize : min((i+1)*s.batchSize, len(records))]
		body, err := usage.MarshalJSONLines(batch)
		if err != nil {
			return err
		}
		log := s.log.WithValues("url", s.redacted, "windowStart", batch[0].WindowStart.UTC().Format(time.RFC3339),
			"batch", i, "batches", batches, "records", len(batch))
		if err := s.deliverBatch(ctx, log, body, idempotencyKey(batch, i)); err != nil {
			return err
		}
	}
	return nil
}

// deliverBatch sends one batch until it is acknowledged or ctx is done.
func (s *HTTP) deliverBatch(ctx context.Context, log logr.Logger, body []byte, key string) error {
	log = log.WithValues("idempotencyKey", key)
	backoff := s.backoff()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		res := s.post(ctx, body, key)
		if res.ok {
			if attempt > 1 {
				log.Info("Delivered metering records after failed attempts", "attempt", attempt)
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		deliveryFailures.WithLabelValues(res.code).Inc()

		var delay time.Duration
		if res.transient {
			delay = max(jitterDown(backoff.Step()), res.retryAfter)
		} else {
			delay = jitterDown(s.maxBackoff)
		}
		delay = min(delay, s.maxBackoff)

		kv := []any{"code", res.code, "attempt", attempt, "retryIn", delay.Round(time.Millisecond).String()}
		switch {
		case res.err != nil:
			log.Info("Delivering metering records failed; retrying", append(kv, "error", res.err.Error())...)
		case res.transient:
			log.Info("Delivering metering records failed; retrying", append(kv, "body", res.body)...)
		default:
			log.Error(fmt.Errorf("the metering receiver answered %s", res.status),
				"The metering receiver rejected records; retrying at the longest interval until it accepts them", append(kv, "body", res.body)...)
		}

		t := s.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
	}
}

// postResult is the outcome of one request.
type postResult struct {
	ok bool
	// transient failures are retried with exponential backoff.
	transient bool
	// code labels the failure metric.
	code       string
	status     string
	err        error
	body       string
	retryAfter time.Duration
}

// post sends one request.
func (s *HTTP) post(ctx context.Context, body []byte, key string) postResult {
	fail := func(err error) postResult { return postResult{transient: true, code: "error", err: err} }
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fail(errors.New("building the request failed"))
	}
	req.Header.Set("Content-Type", ndjsonContentType)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("User-Agent", "meshstack-operator-metering")
	sent := time.Now()
	if s.token != nil {
		token, err := s.token.Token()
		if err != nil {
			return fail(fmt.Errorf("reading the bearer token: %w", err))
		}
		req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// A *url.Error quotes the URL with its query (net/http masks
		// only the password): quote the redacted one instead.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = &url.Error{Op: uerr.Op, URL: s.redacted, Err: uerr.Err}
		}
		return fail(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Read a little of the body so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return postResult{ok: true}
	}
	c := resp.StatusCode
	if c == http.StatusUnauthorized && s.token != nil {
		// The token may have been rotated since it was read: read it
		// again for the next attempt. The token source keeps time by
		// the wall clock, so sent is too.
		s.token.ResetTokenOlderThan(sent)
	}
	r := postResult{
		transient:  c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500,
		code:       strconv.Itoa(c),
		status:     resp.Status,
		body:       readLoggedBody(resp.Body),
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), s.clock.Now()),
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return r
}

// readLoggedBody reads up to maxLoggedBody bytes of a response body.
func readLoggedBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxLoggedBody+1))
	if len(b) > maxLoggedBody {
		return strings.ToValidUTF8(string(b[:maxLoggedBody]), "") + "…(truncated)"
	}
	return strings.ToValidUTF8(string(b), "")
}

// parseRetryAfter reads a Retry-After header, in seconds or an HTTP date;
// it is zero when absent, invalid or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// Saturate instead of overflowing; the caller caps it anyway.
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// jitterDown spreads a wait over [0.8d, d], so that many senders do not
// retry in step and d, at most MaxBackoff, is never exceeded (wait.Jitter
// only lengthens a wait, so it starts from 0.8d).
func jitterDown(d time.Duration) time.Duration {
	return wait.Jitter(d*4/5, 0.25)
}

// backoff is a batch's sequence of waits after transient failures:
// InitialBackoff doubling up to MaxBackoff, unjittered (see jitterDown).
// Its Steps never run out, so the wait stays at the cap once there.
func (s *HTTP) backoff() *wait.Backoff {
	return &wait.Backoff{
		Duration: s.initialBackoff,
		Factor:   2,
		Steps:    math.MaxInt32,
		Cap:      s.maxBackoff,
	}
}

// idempotencyKey is the Idempotency-Key of batch index i of a window; see
// HTTP.
func idempotencyKey(batch []usage.Record, i int) string {
	var b strings.Builder
	b.WriteString("meshstack-metering-batch/v1\n")
	if c := batch[0].Cluster; c != "" {
		// A line with a space, which no window bound has.
		b.WriteString("cluster " + c + "\n")
	}
	for _, line := range []string{
		batch[0].WindowStart.UTC().Format(time.RFC3339Nano), batch[0].WindowEnd.UTC().Format(time.RFC3339Nano),
		strconv.Itoa(i), strconv.Itoa(len(batch)),
	} {
		b.WriteString(line + "\n")
	}
	for _, r := range batch {
		b.WriteString(r.ID + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}
