package framework

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshcloud/meshstack-operator/internal/operator"
)

// RunningManager is an operator manager started by a test.
type RunningManager struct {
	// Manager is the running manager, for tests that inspect its cache.
	Manager ctrl.Manager
	cancel  context.CancelFunc
	// exited is closed when the manager has stopped, with err its error.
	exited chan struct{}
	err    error
	writes *atomic.Int64
	mu     sync.Mutex
	paths  []string
	// requests counts every request by URL path, reads included.
	requests map[string]int
	// writesByPath counts the write requests by "METHOD /path".
	writesByPath map[string]int
}

// StartManager runs the operator with opts against cfg until Stop. It counts
// every request that is not a read, so tests can prove that a converged
// state costs no writes.
func StartManager(cfg *rest.Config, opts operator.Options) (*RunningManager, error) {
	cfg = rest.CopyConfig(cfg)
	m := &RunningManager{writes: &atomic.Int64{}, requests: map[string]int{}, writesByPath: map[string]int{}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			m.mu.Lock()
			m.requests[req.URL.Path]++
			m.mu.Unlock()
			// SelfSubjectAccessReviews are questions, not writes: nothing is stored.
			if req.Method != http.MethodGet && req.Method != http.MethodHead && !strings.HasSuffix(req.URL.Path, "/selfsubjectaccessreviews") {
				m.writes.Add(1)
				m.mu.Lock()
				if len(m.paths) < 100 {
					m.paths = append(m.paths, req.Method+" "+req.URL.Path)
				}
				m.writesByPath[req.Method+" "+req.URL.Path]++
				m.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.SkipNameValidation = true
	mgr, err := operator.NewManager(cfg, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.Manager, m.cancel, m.exited = mgr, cancel, make(chan struct{})
	go func() {
		m.err = mgr.Start(ctx)
		close(m.exited)
	}()
	return m, nil
}

// Writes is the number of write requests the manager has sent.
func (m *RunningManager) Writes() int64 { return m.writes.Load() }

// WritePaths lists the first hundred write requests, "METHOD /path".
func (m *RunningManager) WritePaths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.paths...)
}

// WritesByPath counts every write request so far by "METHOD /path".
func (m *RunningManager) WritesByPath() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.writesByPath)
}

// Requests counts the requests, reads included, whose URL path contains
// any of the substrings.
func (m *RunningManager) Requests(substrings ...string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for path, count := range m.requests {
		for _, s := range substrings {
			if strings.Contains(path, s) {
				n += count
				break
			}
		}
	}
	return n
}

// Stop stops the manager and returns the error it stopped with.
func (m *RunningManager) Stop() error {
	m.cancel()
	<-m.exited
	return m.err
}

// Exited is closed when the manager stops by itself (or is stopped), as a
// process exits; Err is then its error.
func (m *RunningManager) Exited() <-chan struct{} { return m.exited }

// Err is the error the manager stopped with, once Exited is closed.
func (m *RunningManager) Err() error {
	<-m.exited
	return m.err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// ReconcileCount is the number of reconciles the named controller has
// finished in this process, from controller-runtime's metrics.
func ReconcileCount(controller string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, fam := range families {
		if fam.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if labelValue(m, "controller") == controller {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
