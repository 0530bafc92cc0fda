// Package metering is the metering component: the Meter, a
// manager.Runnable that runs on the leader only, turns periodic listings of
// all pods (and, on request, PersistentVolumeClaims) into per-namespace
// usage records (JSON Lines) that a billing system can ingest as they are.
// It also holds the metering flags' defaults and checks, and the metrics
// of the metering loop.
//
// The metering identity may only get and list pods (and, with optional
// roles, list namespaces' labels for attribution and claims), so there is
// no informer: every interval the leader lists all pods in pages through an
// uncached reader and adds what the Running ones reserve to per-namespace
// sums. The sums of open windows, the closed windows not yet delivered and
// the time of the last pass live in a checkpoint (a ConfigMap), so that a
// new process after a restart or a change of leader carries on where the
// last one stopped.
//
// This package is the loop and the wiring only: what a pass counts is
// package usage, whose a namespace is package attribution, how the
// checkpoint is encoded and kept package checkpoint, and how records are
// written or sent package sink.
package metering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/metering/attribution"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
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

// Resources the meter can count, as --metering-resources names them.
const (
	ResourcePods                   = "pods"
	ResourcePersistentVolumeClaims = "persistentvolumeclaims"
)

// maxListAttempts bounds how often a pass starts its listing again after a
// continue token expired.
const maxListAttempts = 3

// Meter is the metering component: a manager.Runnable that runs on the
// leader only.
type Meter struct {
	// Reader lists pods and claims past any cache (the manager's APIReader).
	Reader client.Reader
	// Interval is the time between passes; Window the length of a record's
	// window; PageSize the number of objects per list request.
	Interval time.Duration
	Window   time.Duration
	PageSize int64
	// Resources are ResourcePods and optionally ResourcePersistentVolumeClaims.
	Resources []string
	// Cluster (--metering-cluster) names the cluster in every record and is
	// part of its id; empty keeps the ids of the releases before it.
	Cluster string
	// Attribution is AttributionProject or AttributionNamespaceName (when
	// empty); UnmanagedNamespaces is UnmanagedInclude (when empty) or
	// UnmanagedExclude (see there). ReleaseNamespace, the operator's own
	// namespace, is never attributed by name.
	Attribution         string
	UnmanagedNamespaces string
	ReleaseNamespace    string
	// Checkpoint keeps what was counted and what is still to be delivered;
	// nil meters without one (and can lose usage on every restart).
	Checkpoint checkpoint.Store
	// Output is sink.StdoutOutput, an http(s):// URL or the path of a file to
	// append to.
	Output string
	// HTTP configures an http(s) output; its URL and Log are taken from
	// Output and Log.
	HTTP sink.HTTPOptions
	// Stdout is where sink.StdoutOutput writes; os.Stdout when nil.
	Stdout io.Writer
	// Clock is the real clock when nil.
	Clock clock.WithTicker
	Log   logr.Logger

	// checkpointRead is set once this process has read the checkpoint.
	checkpointRead atomic.Bool
	// refused is why the leader refuses to meter from the checkpoint, while
	// it does.
	refused atomic.Pointer[string]
}

// NoClusterWarning is logged at start when the meter POSTs to a receiver
// without --metering-cluster.
const NoClusterWarning = "WARNING: no --metering-cluster: the records name no cluster, so a receiver that gets records from " +
	"several clusters gets the same ids for a namespace of the same name in the same window, and one de-duplicating by id drops all but one. " +
	"Set --metering-cluster (chart value metering.cluster) to a name unique among your clusters; this changes the ids from then on."

// MaxClockSkew is how far in the future, by this process's clock, the last
// pass of a checkpoint may lie. A checkpoint further ahead (written by a
// replica whose clock ran ahead, or forged) is refused: resuming from it
// would skip the billing time up to its last pass.
const MaxClockSkew = 5 * time.Minute

// ErrCheckpointInFuture means the checkpoint's last pass lies more than
// MaxClockSkew ahead of this process's clock.
var ErrCheckpointInFuture = errors.New("the metering checkpoint's last pass lies in the future")

var (
	_ manager.Runnable               = &Meter{}
	_ manager.LeaderElectionRunnable = &Meter{}
)

// NeedLeaderElection makes only the leader meter.
func (m *Meter) NeedLeaderElection() bool { return true }

// ReadyCheck is a readiness check (healthz.Checker): ready once the
// checkpoint could be read, by the leader when it started metering or by
// this check on a standby. A replica that cannot read it could not take
// over.
func (m *Meter) ReadyCheck(req *http.Request) error {
	if why := m.refused.Load(); why != nil {
		return errors.New(*why)
	}
	if m.Checkpoint == nil || m.checkpointRead.Load() {
		return nil
	}
	if err := m.Checkpoint.Probe(req.Context()); err != nil {
		return err
	}
	m.checkpointRead.Store(true)
	return nil
}

// Validate checks the settings.
func (m *Meter) Validate() error {
	if err := ValidateSettings(m.Interval, m.Window, m.PageSize, m.Output); err != nil {
		return err
	}
	if err := usage.ValidateCluster(m.Cluster); err != nil {
		return err
	}
	if m.Attribution == "" {
		m.Attribution = AttributionNamespaceName
	}
	if m.UnmanagedNamespaces == "" {
		m.UnmanagedNamespaces = UnmanagedInclude
	}
	if err := ValidateAttribution(m.Attribution, m.UnmanagedNamespaces); err != nil {
		return err
	}
	_, err := ParseResources(m.Resources)
	return err
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
		return fmt.Errorf("--metering-output must be %q (stdout), an http(s):// URL or a file path", sink.StdoutOutput)
	case sink.IsHTTPOutput(output):
		return sink.ValidateHTTPOutput(output)
	case strings.Contains(output, "://"):
		// Not a file path anyone means; its error messages would quote
		// the URL's credentials.
		return fmt.Errorf("--metering-output %q is a URL with a scheme other than https:// or http://", sink.RedactOutput(output))
	}
	return nil
}

// ParseResources checks a --metering-resources list: pods, and optionally
// persistentvolumeclaims.
func ParseResources(resources []string) (claims bool, err error) {
	if !slices.Contains(resources, ResourcePods) {
		return false, fmt.Errorf("--metering-resources must include %s", ResourcePods)
	}
	for _, r := range resources {
		switch r {
		case ResourcePods:
		case ResourcePersistentVolumeClaims:
			claims = true
		default:
			return false, fmt.Errorf("--metering-resources: unknown resource %q, want %s or %s", r, ResourcePods, ResourcePersistentVolumeClaims)
		}
	}
	return claims, nil
}

// Start meters until ctx is done. It returns an error when the checkpoint
// cannot be read, when another process saved it (this one is no longer the
// leader), or when the output cannot be written: then the records are not
// safe, and a new process resumes from the checkpoint.
func (m *Meter) Start(ctx context.Context) error {
	if err := m.Validate(); err != nil {
		return err
	}
	r, err := m.openChecked(ctx)
	if err != nil || r == nil {
		return err
	}
	defer func() {
		if err := r.out.Close(); err != nil {
			m.Log.Error(err, "Closing the metering output")
		}
	}()
	stopDelivering := r.startDelivering(ctx)
	defer stopDelivering()

	ticker := r.clock.NewTicker(m.Interval)
	defer ticker.Stop()
	err = r.pass(ctx)
	for err == nil {
		r.dispatch()
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
			err = r.pass(ctx)
		case res := <-r.results:
			err = r.markDelivered(ctx, res)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	m.Log.Error(err, "Metering stops")
	return err
}

// openChecked opens the run, and while the checkpoint lies in the future
// refuses to meter: it logs an error, sets meshstack_metering_checkpoint_refused
// and fails readiness, leaves the checkpoint as it is (nothing counted in it
// is lost) and tries again every interval, so that metering resumes by
// itself once the clocks agree or someone moved the checkpoint away. It
// returns a nil run when ctx ends first.
func (m *Meter) openChecked(ctx context.Context) (*run, error) {
	clk := m.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	for {
		r, err := m.open(ctx)
		if !errors.Is(err, ErrCheckpointInFuture) {
			checkpointRefused.Set(0)
			m.refused.Store(nil)
			return r, err
		}
		checkpointRefused.Set(1)
		why := err.Error()
		m.refused.Store(&why)
		m.Log.Error(err, "Refusing to meter from the metering checkpoint: its last pass lies in the future, and resuming from it would skip "+
			"the billing time up to it. Nothing is metered until this process's clock reaches it (fix the clock of the node that is wrong) "+
			"or the checkpoint is moved away (which loses what it holds); the checkpoint is left as it is, and this is tried again every interval.",
			"interval", m.Interval)
		t := clk.NewTimer(m.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C():
		}
	}
}

// run is one process's metering: from open to the end of Start.
type run struct {
	*Meter
	clock  clock.WithTicker
	agg    *usage.Aggregator
	claims bool
	out    sink.Sink

	// pending are the closed windows not yet delivered, oldest first; the
	// first fixed of them are in the saved checkpoint and may be delivered.
	pending       []usage.Window
	fixed         int
	deliveredUpTo time.Time

	// The delivering goroutine takes one window at a time from work and
	// answers on results; busy while it has one.
	work    chan usage.Window
	results chan deliveryResult
	busy    bool

	claimsForbiddenLogged     bool
	namespacesForbiddenLogged bool
}

type deliveryResult struct {
	window usage.Window
	err    error
}

// open opens the output and the checkpoint and decides where counting
// resumes.
func (m *Meter) open(ctx context.Context) (*run, error) {
	r := &run{Meter: m, clock: m.Clock}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	r.claims, _ = ParseResources(m.Resources)
	now := r.clock.Now()
	current := usage.WindowStart(now, m.Window)
	kv := []any{"output", sink.RedactOutput(m.Output), "interval", m.Interval, "window", m.Window, "pageSize", m.PageSize, "resources", m.Resources,
		"cluster", m.Cluster, "attribution", m.Attribution, "unmanagedNamespaces", m.UnmanagedNamespaces}
	if m.Cluster == "" && sink.IsHTTPOutput(m.Output) {
		m.Log.Info(NoClusterWarning, kv...)
	}

	out, outputUpTo, err := m.openSink()
	if err != nil {
		return nil, err
	}
	r.out = out

	var cp *checkpoint.Checkpoint
	if m.Checkpoint != nil {
		kv = append(kv, "checkpoint", m.Checkpoint.Describe())
		if cp, err = m.Checkpoint.Load(ctx); err != nil {
			_ = out.Close()
			return nil, fmt.Errorf("reading the metering checkpoint: %w", err)
		}
		m.checkpointRead.Store(true)
		if cp != nil && cp.LastPass.After(now.Add(MaxClockSkew)) {
			_ = out.Close()
			return nil, fmt.Errorf("%w: it was made up to %s, %s after this process's clock (%s), more than the %s of clock skew tolerated",
				ErrCheckpointInFuture, cp.LastPass.Format(time.RFC3339), cp.LastPass.Sub(now).Round(time.Second),
				now.UTC().Format(time.RFC3339), MaxClockSkew)
		}
	} else {
		m.Log.Info("WARNING: metering without a checkpoint (--metering-checkpoint=\"\"). A restart or a change of leader loses the usage "+
			"counted in the open window and every window that closes while no metering process runs, and, with a stdout or "+
			"HTTP output, a window being delivered at the time; two processes metering at once both emit every window.", kv...)
	}

	switch {
	case cp != nil && cp.Window == m.Window:
		r.agg = usage.RestoreAggregator(m.Window, cp.LastPass, cp.Open)
		r.pending, r.fixed, r.deliveredUpTo = cp.Pending, len(cp.Pending), cp.Delivered
		m.Log.Info("Metering: resuming from the checkpoint", append(kv, "resume", cp.LastPass.Format(time.RFC3339Nano),
			"openWindows", len(cp.Open), "pendingWindows", len(cp.Pending))...)
	case cp != nil:
		// The window length changed: the closed windows stand, the open
		// ones cannot be continued, so their time is counted again from
		// the pods still running.
		resume := cp.LastPass
		if len(cp.Open) > 0 {
			resume = cp.Open[0].Start
		}
		r.agg = usage.NewAggregator(m.Window, resume)
		r.pending, r.fixed, r.deliveredUpTo = cp.Pending, len(cp.Pending), cp.Delivered
		m.Log.Info("WARNING: the metering checkpoint was written for another --metering-window; its open windows are counted again "+
			"from the pods still running, so pods that ended in them are missed and the first window can be partial",
			append(kv, "checkpointWindow", cp.Window, "resume", resume.Format(time.RFC3339), "pendingWindows", len(cp.Pending))...)
	case !outputUpTo.IsZero():
		r.agg = usage.NewAggregator(m.Window, outputUpTo)
		m.Log.Info("Metering: no checkpoint yet, resuming after the last window in the output", append(kv, "resume", outputUpTo.Format(time.RFC3339))...)
	default:
		r.agg = usage.NewAggregator(m.Window, current)
		m.Log.Info("Metering: no checkpoint yet, counting from the start of the current window", append(kv, "resume", current.Format(time.RFC3339))...)
	}
	if r.agg.Last().After(now) {
		m.Log.Info("WARNING: the metering checkpoint or output reaches into the future (clock skew?); nothing is counted before that",
			"resume", r.agg.Last(), "now", now)
	}
	r.updateDeliveryMetrics()
	return r, nil
}

// openSink opens the output. For a file it also returns the end of the last
// complete window the file holds.
func (m *Meter) openSink() (sink.Sink, time.Time, error) {
	switch {
	case m.Output == sink.StdoutOutput:
		w := m.Stdout
		if w == nil {
			w = os.Stdout
		}
		return sink.NewWriter(w), time.Time{}, nil
	case sink.IsHTTPOutput(m.Output):
		o := m.HTTP
		o.URL, o.Log = m.Output, m.Log.WithName("http")
		s, err := sink.NewHTTP(o)
		return s, time.Time{}, err
	}
	f, err := sink.OpenFile(m.Output, m.Log)
	if err != nil {
		return nil, time.Time{}, err
	}
	return f, f.UpTo(), nil
}

// startDelivering starts the goroutine that delivers one window at a time,
// so that a slow or failing sink never holds up the passes. The returned
// function stops it and waits for it.
func (r *run) startDelivering(ctx context.Context) (stop func()) {
	r.work, r.results = make(chan usage.Window, 1), make(chan deliveryResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for w := range r.work {
			r.results <- deliveryResult{window: w, err: r.out.Deliver(ctx, usage.WindowRecords(r.Cluster, w.Start, w.End, w.Usage))}
		}
	}()
	return func() {
		close(r.work)
		<-done
	}
}

// dispatch hands the oldest window that is fixed in the checkpoint to the
// delivering goroutine, if it is idle.
func (r *run) dispatch() {
	if r.busy || r.fixed == 0 {
		return
	}
	r.busy = true
	r.work <- r.pending[0]
}

// markDelivered marks a delivered window in the checkpoint.
func (r *run) markDelivered(ctx context.Context, res deliveryResult) error {
	r.busy = false
	w := res.window
	if res.err != nil {
		return fmt.Errorf("delivering the usage records of the window from %s: %w", w.Start.Format(time.RFC3339), res.err)
	}
	r.pending, r.fixed, r.deliveredUpTo = r.pending[1:], r.fixed-1, w.End
	recordsEmitted.Add(float64(len(w.Usage)))
	r.Log.Info("Delivered usage records", "windowStart", w.Start, "windowEnd", w.End, "records", len(w.Usage), "pendingWindows", len(r.pending))
	r.updateDeliveryMetrics()
	_, err := r.save(ctx)
	return err
}

// pass lists every pod (and claim) once, page by page, fixes the windows
// that closed in the checkpoint and saves it. A failed listing discards the
// pass: the next pass covers its time. Only a fenced checkpoint is an error.
func (r *run) pass(ctx context.Context) error {
	began := r.clock.Now()
	p, err := r.list(ctx, began)
	if err != nil {
		if ctx.Err() != nil {
			return nil //nolint:nilerr // a listing cut short by shutdown is no failure; the pass is discarded like any failed one
		}
		listErrors.Inc()
		r.Log.Error(err, "Listing failed; discarding this pass, the next one covers its time")
		return nil
	}
	if !p.Time().After(r.agg.Last()) {
		r.Log.Info("WARNING: the clock is at or before the previous pass; this pass counts nothing",
			"now", p.Time(), "previousPass", r.agg.Last())
	}
	r.agg.Commit(p)
	r.reportInvalid(p)
	r.pending = append(r.pending, r.agg.TakeClosed()...)
	saved, err := r.save(ctx)
	if err != nil {
		return err
	}
	r.updateDeliveryMetrics()

	// A pass whose checkpoint was not saved is not safe: a restart would
	// count its time again from the last good save, and its closed
	// windows are not delivered. MeshstackMeteringStale must see that.
	if saved {
		lastSuccessTimestamp.Set(float64(r.clock.Now().UnixNano()) / 1e9)
	}
	podsSeen.Set(float64(p.Listed))
	passDuration.Observe(r.clock.Since(began).Seconds())
	r.Log.V(1).Info("Metering pass done", "pods", p.Listed, "running", p.Counted, "claims", p.Claims, "duration", r.clock.Since(began), "saved", saved)
	return nil
}

// reportInvalid counts the pass's out-of-bounds quantities and logs them in
// one line.
func (r *run) reportInvalid(p *usage.Pass) {
	if len(p.Invalid) == 0 {
		return
	}
	n, namespaces := 0, map[string]bool{}
	for k, c := range p.Invalid {
		invalidQuantities.WithLabelValues(k.Namespace, k.Resource).Add(float64(c))
		n += c
		namespaces[k.Namespace] = true
	}
	r.Log.Error(errors.New("quantity out of bounds"), "Quantities that are negative, not finite or above 2^63 bytes or 2^63 millicores count as 0 "+
		"for that resource of that pod or claim (meshstack_metering_invalid_quantities_total counts them by namespace)",
		"quantities", n, "namespaces", len(namespaces), "first", p.FirstInvalid)
}

// save writes the checkpoint and reports whether it did. Only a fenced
// write is returned as an error: any other failure leaves the new closed
// windows unfixed (and so undelivered) until a later save succeeds, and
// sets meshstack_metering_checkpoint_save_failing.
func (r *run) save(ctx context.Context) (bool, error) {
	if r.Checkpoint == nil {
		r.fixed = len(r.pending)
		return true, nil
	}
	open := r.agg.Open()
	// Defence in depth: the quantities are bounded when they are added,
	// so no sum can be +Inf or NaN; if one were, it would make every
	// save fail and stop the delivery of every namespace's windows.
	r.sanitize(open)
	r.sanitize(r.pending)
	err := r.Checkpoint.Save(ctx, &checkpoint.Checkpoint{
		Window: r.Window, LastPass: r.agg.Last(), Delivered: r.deliveredUpTo, Open: open, Pending: r.pending,
	})
	switch {
	case errors.Is(err, checkpoint.ErrFenced):
		return false, fmt.Errorf("this process is no longer the leader, so it stops metering without delivering anything more: %w", err)
	case err != nil:
		if ctx.Err() == nil {
			checkpointErrors.Inc()
			checkpointSaveFailing.Set(1)
			r.Log.Error(err, "Saving the metering checkpoint failed; closed windows are delivered once a later save succeeds",
				"pendingWindows", len(r.pending))
		}
		return false, nil
	}
	checkpointSaveFailing.Set(0)
	r.fixed = len(r.pending)
	return true, nil
}

// sanitize sets every figure of windows that no checkpoint or record can
// hold (negative or not finite) to 0, counts it in
// meshstack_metering_invalid_quantities_total with resource "sum" and logs
// it.
func (r *run) sanitize(windows []usage.Window) {
	for _, w := range windows {
		for ns, u := range w.Usage {
			if fields := u.Sanitize(); len(fields) > 0 {
				invalidQuantities.WithLabelValues(ns, "sum").Add(float64(len(fields)))
				r.Log.Error(errors.New("sum out of bounds"), "A usage sum is negative or not finite; it is set to 0 so that the checkpoint can be saved",
					"namespace", ns, "windowStart", w.Start, "fields", fields)
			}
		}
	}
}

// list makes a pass at began from a complete listing. A continue token that
// expires half way (the API server compacted the list's snapshot) starts
// the pass again, so that no object counts twice.
func (r *run) list(ctx context.Context, began time.Time) (*usage.Pass, error) {
	for attempt := 1; ; attempt++ {
		p := r.agg.NewPass(began)
		err := r.listInto(ctx, p)
		if err == nil {
			err = r.attribute(ctx, p)
		}
		if (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) && attempt < maxListAttempts {
			r.Log.Info("A list continue token expired in the middle of a pass; listing again from the start", "attempt", attempt, "error", err.Error())
			continue
		}
		return p, err
	}
}

func (r *run) listInto(ctx context.Context, p *usage.Pass) error {
	err := listPages(ctx, r.Reader, r.PageSize, func() client.ObjectList { return &corev1.PodList{} }, func(l client.ObjectList) {
		pods := l.(*corev1.PodList)
		for i := range pods.Items {
			p.Add(&pods.Items[i])
		}
	})
	if err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	if !r.claims {
		return nil
	}
	err = listPages(ctx, r.Reader, r.PageSize, func() client.ObjectList { return &corev1.PersistentVolumeClaimList{} }, func(l client.ObjectList) {
		claims := l.(*corev1.PersistentVolumeClaimList)
		for i := range claims.Items {
			p.AddClaim(&claims.Items[i])
		}
	})
	switch {
	case apierrors.IsForbidden(err):
		if !r.claimsForbiddenLogged {
			r.claimsForbiddenLogged = true
			r.Log.Error(err, "Metering PersistentVolumeClaims is not permitted: the metering ServiceAccount may not list them. "+
				"Metering pods only until it may (chart value metering.persistentVolumeClaims.enabled=true grants it).")
		}
		return nil
	case err != nil:
		return fmt.Errorf("listing persistentvolumeclaims: %w", err)
	}
	r.claimsForbiddenLogged = false
	return nil
}

// attribute attributes the pass's usage to customers and projects (see
// Attribution), after the pods are counted: a namespace whose pods were
// listed still exists then, since a namespace goes only once its pods are
// gone.
func (r *run) attribute(ctx context.Context, p *usage.Pass) error {
	exclude := r.UnmanagedNamespaces == UnmanagedExclude
	byName := func(ns string) *attribution.Attribution { return attribution.FromName(ns, r.ReleaseNamespace) }
	if r.Attribution != AttributionProject {
		p.Attribute(byName, exclude)
		return nil
	}
	managed := map[string]*attribution.Attribution{}
	err := listPages(ctx, r.Reader, r.PageSize, newNamespaceMetadataList, func(l client.ObjectList) {
		for i := range l.(*metav1.PartialObjectMetadataList).Items {
			ns := &l.(*metav1.PartialObjectMetadataList).Items[i]
			if a := attribution.FromProject(ns); a != nil && p.HasUsage(ns.Name) {
				managed[strings.Clone(ns.Name)] = a
			}
		}
	}, client.MatchingLabels{meshv1.LabelManagedBy: meshv1.ManagedByValue})
	switch {
	case apierrors.IsForbidden(err):
		if !r.namespacesForbiddenLogged {
			r.namespacesForbiddenLogged = true
			r.Log.Error(err, "Attributing usage to projects is not permitted: the metering ServiceAccount may not list namespaces. "+
				"Attributing by namespace name until it may (chart value metering.projectAttribution.enabled=true grants it; "+
				"--metering-attribution=namespace-name stops trying).")
		}
		p.Attribute(byName, exclude)
		return nil
	case err != nil:
		return fmt.Errorf("listing namespaces: %w", err)
	}
	r.namespacesForbiddenLogged = false
	p.Attribute(func(ns string) *attribution.Attribution {
		if a := managed[ns]; a != nil {
			return a
		}
		return attribution.Unattributed
	}, exclude)
	return nil
}

// newNamespaceMetadataList is a page of namespaces' metadata: attribution
// needs their labels and annotations only.
func newNamespaceMetadataList() client.ObjectList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	return l
}

// listPages lists every object of a kind, a page at a time, into a new page
// object each (decoding into a used one would mix objects), and hands each
// page to each while the next one is on its way: counting a page then costs
// the pass no time of its own while the API server is the slower of the
// two. At most three pages are held at once.
func listPages(ctx context.Context, reader client.Reader, pageSize int64, newPage func() client.ObjectList, each func(client.ObjectList),
	opts ...client.ListOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan client.ObjectList, 1)
	failed := make(chan error, 1)
	go func() {
		defer close(pages)
		token := ""
		for {
			page := newPage()
			if err := reader.List(ctx, page, append([]client.ListOption{client.Limit(pageSize), client.Continue(token)}, opts...)...); err != nil {
				failed <- err
				return
			}
			token = page.GetContinue()
			select {
			case pages <- page:
			case <-ctx.Done():
				// Never a partial listing that looks complete.
				failed <- ctx.Err()
				return
			}
			if token == "" {
				return
			}
		}
	}()
	for page := range pages {
		each(page)
	}
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

func (r *run) updateDeliveryMetrics() {
	pendingWindows.Set(float64(len(r.pending)))
	if len(r.pending) == 0 {
		oldestUndelivered.Set(0)
	} else {
		oldestUndelivered.Set(float64(r.pending[0].End.Unix()))
	}
}
