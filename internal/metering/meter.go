// Package metering turns periodic listings of all pods into per-namespace
// usage records (JSON Lines) that a billing system can ingest as they are.
//
// The metering identity may only get and list pods, so there is no
// informer: every interval the leader lists all pods in pages through an
// uncached reader and adds what the Running ones reserve to per-namespace
// sums. It keeps nothing else between passes.
package metering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// The ClusterRole rules are the seed's meshfed-metering ClusterRole, verb for
// verb: pods get and list, nothing else. Leader election needs its Lease
// (and may record events) in the operator's namespace only.
//
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=meshcloud,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io;"",namespace=meshcloud,resources=events,verbs=create;patch

// Defaults of the metering flags.
const (
	DefaultInterval = time.Minute
	DefaultWindow   = time.Hour
	DefaultPageSize = 500
)

// Meter is the metering component: a manager.Runnable that runs on the
// leader only.
type Meter struct {
	// Reader lists pods past any cache (the manager's APIReader).
	Reader client.Reader
	// Interval is the time between passes; Window the length of a record's
	// window; PageSize the number of pods per list request.
	Interval time.Duration
	Window   time.Duration
	PageSize int64
	// Output is StdoutOutput or the path of a file to append to.
	Output string
	// Stdout is where StdoutOutput writes; os.Stdout when nil.
	Stdout io.Writer
	// Clock is the real clock when nil.
	Clock clock.WithTicker
	Log   logr.Logger
}

var (
	_ manager.Runnable               = &Meter{}
	_ manager.LeaderElectionRunnable = &Meter{}
)

// NeedLeaderElection makes only the leader meter.
func (m *Meter) NeedLeaderElection() bool { return true }

// Validate checks the settings.
func (m *Meter) Validate() error {
	return ValidateSettings(m.Interval, m.Window, m.PageSize, m.Output)
}

// ValidateSettings checks metering settings; the operator's options use it
// for the flags.
func ValidateSettings(interval, window time.Duration, pageSize int64, output string) error {
	switch {
	case interval <= 0:
		return fmt.Errorf("--metering-interval must be positive")
	case window < interval:
		return fmt.Errorf("--metering-window (%s) must be at least --metering-interval (%s)", window, interval)
	case window%time.Second != 0 || (24*time.Hour)%window != 0:
		return fmt.Errorf("--metering-window (%s) must be a whole number of seconds that divides 24h, so that windows align to UTC days", window)
	case pageSize <= 0:
		return fmt.Errorf("--metering-page-size must be positive")
	case output == "":
		return fmt.Errorf("--metering-output must be %q (stdout) or a file path", StdoutOutput)
	}
	return nil
}

// Start meters until ctx is done. It returns an error only when the output
// cannot be opened or written: then the records are not safe, and a restart
// repairs and resumes the output.
func (m *Meter) Start(ctx context.Context) error {
	if err := m.Validate(); err != nil {
		return err
	}
	r, err := m.open()
	if err != nil {
		return err
	}
	defer func() {
		if err := r.out.Close(); err != nil {
			m.Log.Error(err, "Closing the metering output")
		}
	}()
	ticker := r.clock.NewTicker(m.Interval)
	defer ticker.Stop()
	for {
		if err := r.pass(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// run is one process's metering: from open to the end of Start.
type run struct {
	*Meter
	clock     clock.WithTicker
	agg       *Aggregator
	out       Sink
	statePath string // empty for stdout
}

// open opens the output and decides where counting resumes.
func (m *Meter) open() (*run, error) {
	r := &run{Meter: m, clock: m.Clock}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	now := r.clock.Now()
	current := WindowStart(now, m.Window)

	if m.Output == StdoutOutput {
		w := m.Stdout
		if w == nil {
			w = os.Stdout
		}
		r.out = writerSink{w}
		r.agg = NewAggregator(m.Window, current)
		m.Log.Info("Metering to stdout, which keeps no checkpoint: counting from the start of the current window; "+
			"consumers must de-duplicate by id, and windows that closed while no metering process ran are lost",
			"resume", current.Format(time.RFC3339), "interval", m.Interval, "window", m.Window, "pageSize", m.PageSize)
		return r, nil
	}

	f, resume, err := openFile(m.Output, m.Log)
	if err != nil {
		return nil, err
	}
	r.out = fileSink{f}
	r.statePath = statePath(m.Output)

	// Resume from the state of the previous process if it fits the output;
	// else after the last window in the output; else (a new or empty output
	// and no state) from the start of the current window.
	r.agg = NewAggregator(m.Window, resume)
	kv := []any{"output", m.Output, "interval", m.Interval, "window", m.Window, "pageSize", m.PageSize}
	if !resume.IsZero() {
		kv = append(kv, "outputUpTo", resume.Format(time.RFC3339))
	}
	restored := false
	last, open, err := loadState(r.statePath, m.Window)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		m.Log.Error(err, "Ignoring the metering state file: pods that ended in the open window before the restart are not counted", kv...)
	case last.After(now):
		m.Log.Info("WARNING: ignoring the metering state file, which is from the future", append(kv, "stateLastPass", last)...)
	default:
		restored = r.agg.Restore(last, open)
		if !restored {
			m.Log.Info("The metering state file is older than the output; ignoring it", append(kv, "stateLastPass", last)...)
		}
	}
	switch {
	case restored:
		m.Log.Info("Metering: resuming from the last pass of the previous process",
			append(kv, "resume", last.Format(time.RFC3339), "openWindows", len(r.agg.Open()))...)
	case !resume.IsZero():
		m.Log.Info("Metering: resuming after the last window in the output", append(kv, "resume", resume.Format(time.RFC3339))...)
	default:
		resume = current
		r.agg = NewAggregator(m.Window, resume)
		m.Log.Info("Metering: new output, counting from the start of the current window", append(kv, "resume", resume.Format(time.RFC3339))...)
	}
	if resume.After(now) {
		m.Log.Info("WARNING: the metering output holds windows that end in the future (clock skew?); nothing is counted before that",
			"resume", resume, "now", now)
	}
	return r, nil
}

// pass lists every pod once, page by page, and writes the windows that
// closed. A failed listing discards the pass: the next pass covers its time.
// Only output errors are returned.
func (r *run) pass(ctx context.Context) error {
	began := r.clock.Now()
	p := r.agg.NewPass(began)
	token := ""
	for {
		page := &corev1.PodList{}
		if err := r.Reader.List(ctx, page, client.Limit(r.PageSize), client.Continue(token)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			listErrors.Inc()
			r.Log.Error(err, "Listing pods failed; discarding this pass, the next one covers its time")
			return nil
		}
		for i := range page.Items {
			p.Add(&page.Items[i])
		}
		token = page.Continue
		if token == "" {
			break
		}
	}
	if !p.to.After(r.agg.Last()) {
		r.Log.Info("WARNING: the clock is at or before the previous pass; this pass counts nothing",
			"now", p.to, "previousPass", r.agg.Last())
	}
	r.agg.Commit(p)

	for _, w := range r.agg.TakeClosed() {
		records := windowRecords(w.Start, w.End, w.Usage)
		if err := r.out.Deliver(ctx, records); err != nil {
			return fmt.Errorf("writing the usage records of the window from %s: %w", w.Start.Format(time.RFC3339), err)
		}
		recordsEmitted.Add(float64(len(records)))
		r.Log.Info("Emitted usage records", "windowStart", w.Start, "windowEnd", w.End, "records", len(records))
	}
	if r.statePath != "" {
		if err := saveState(r.statePath, r.Window, r.agg.Last(), r.agg.Open()); err != nil {
			r.Log.Error(err, "Saving the metering state failed; a restart would resume from the last window in the output")
		}
	}

	lastSuccessTimestamp.Set(float64(r.clock.Now().UnixNano()) / 1e9)
	podsSeen.Set(float64(p.Listed))
	passDuration.Observe(r.clock.Since(began).Seconds())
	r.Log.V(1).Info("Metering pass done", "pods", p.Listed, "running", p.Counted, "duration", r.clock.Since(began))
	return nil
}
