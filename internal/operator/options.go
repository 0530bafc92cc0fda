// Package operator assembles the manager from the selected components and
// their command-line options. cmd/ and the tests share it, so the tests run
// the same wiring the binary does.
package operator

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
)

// Component names accepted by --components.
const (
	ComponentReplicator = "replicator"
	ComponentMetering   = "metering"
)

// AllComponents lists every component in the order they are documented.
var AllComponents = []string{ComponentReplicator, ComponentMetering}

// Options are the operator's settings; BindFlags exposes them as flags.
type Options struct {
	Components []string

	MetricsBindAddress     string
	MetricsSecure          bool
	MetricsCertDir         string
	HealthProbeBindAddress string
	PprofBindAddress       string
	LeaderElect            bool
	LeaderElectionNS       string
	LeaderElectionID       string
	// Leader election timings (controller-runtime's defaults): how long a
	// standby waits after the last renewal before it takes over, how long
	// the leader keeps trying to renew before it gives up (and the process
	// exits), and how often both try.
	LeaderElectionLeaseDuration time.Duration
	LeaderElectionRenewDeadline time.Duration
	LeaderElectionRetryPeriod   time.Duration

	KubeAPIQPS   float64
	KubeAPIBurst int

	// Replicator
	RoleMapping             replicator.RoleMapping
	UsernamePrefix          string
	GroupsPrefix            string
	MaxConcurrentReconciles int
	ConflictRetryInterval   time.Duration
	DefaultLandingZone      string

	// Metering
	MeteringInterval time.Duration
	MeteringWindow   time.Duration
	MeteringPageSize int64
	MeteringOutput   string
	// MeteringCheckpoint names the checkpoint ConfigMap in the leader
	// election namespace; empty meters without a checkpoint.
	MeteringCheckpoint      string
	MeteringCheckpointParts int
	MeteringResources       []string
	// MeteringCluster names the cluster in every usage record and is part
	// of the records' ids; empty keeps the ids of earlier releases.
	MeteringCluster string
	// MeteringAttribution (metering.AttributionProject or
	// metering.AttributionNamespaceName) and MeteringUnmanagedNamespaces
	// (metering.UnmanagedInclude or metering.UnmanagedExclude) say how
	// records are attributed to projects and whether namespaces that are
	// no project's get records.
	MeteringAttribution         string
	MeteringUnmanagedNamespaces string
	MeteringHTTP                sink.HTTPOptions
	// MeteringStdout is where a "-" output writes; os.Stdout when nil. Tests
	// give each meter its own.
	MeteringStdout io.Writer

	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
}

// GoMemLimitRatio is the share of the container's memory limit the binary
// sets as GOMEMLIMIT (environment AUTOMEMLIMIT overrides it). When the
// live heap is large, the Go runtime holds its memory near GOMEMLIMIT, so
// the resident set is about GOMEMLIMIT plus what it does not count: the
// binary's own pages (about 28 MiB). The rest of the limit is room for a
// relist of the informer caches, during which the old objects and the new
// ones are alive at once. At 0.65 of the chart's 256Mi, 10,000 projects
// peak at about 190 MiB (make bench-scale).
const GoMemLimitRatio = 0.65

// DefaultOptions returns the defaults the flags document.
func DefaultOptions() Options {
	mapping, _ := replicator.ParseRoleMapping(replicator.DefaultRoleMapping)
	return Options{
		Components:                  slices.Clone(AllComponents),
		MetricsBindAddress:          ":8443",
		MetricsSecure:               true,
		HealthProbeBindAddress:      ":8081",
		KubeAPIQPS:                  -1,
		KubeAPIBurst:                1000,
		RoleMapping:                 mapping,
		UsernamePrefix:              "mesh:",
		GroupsPrefix:                "",
		MaxConcurrentReconciles:     10,
		ConflictRetryInterval:       replicator.DefaultConflictRetryInterval,
		MeteringInterval:            metering.DefaultInterval,
		MeteringWindow:              metering.DefaultWindow,
		MeteringPageSize:            metering.DefaultPageSize,
		MeteringOutput:              sink.StdoutOutput,
		MeteringCheckpoint:          checkpoint.DefaultName,
		MeteringCheckpointParts:     checkpoint.DefaultParts,
		MeteringResources:           []string{metering.ResourcePods},
		MeteringAttribution:         metering.AttributionProject,
		MeteringUnmanagedNamespaces: metering.UnmanagedInclude,
		MeteringHTTP:                sink.HTTPOptions{BatchSize: sink.DefaultHTTPBatchSize},

		// controller-runtime's defaults.
		LeaderElectionLeaseDuration: 15 * time.Second,
		LeaderElectionRenewDeadline: 10 * time.Second,
		LeaderElectionRetryPeriod:   2 * time.Second,
	}
}

// BindFlags registers the options as flags on fs, with o's values as defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.Func("components", fmt.Sprintf("Comma-separated components to run: %s. (default %q)",
		strings.Join(AllComponents, ", "), strings.Join(o.Components, ",")), func(s string) error {
		components, err := ParseComponents(s)
		o.Components = components
		return err
	})
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address the Prometheus metrics endpoint binds to (/metrics). \"0\" disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"Serve /metrics over HTTPS to callers the API server authenticates (TokenReview) and authorizes for get on /metrics (SubjectAccessReview); false serves plain HTTP to anyone.")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", o.MetricsCertDir,
		"Directory with tls.crt and tls.key for --metrics-secure, reloaded when they change; a self-signed certificate when empty or missing.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address the health (/healthz) and readiness (/readyz) probes bind to. \"0\" disables them.")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress,
		"Address that serves Go's /debug/pprof/ profiles, for measuring where time and memory go. Empty or \"0\" disables it.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect,
		"Elect a leader with a Lease, so that only one replica works at a time.")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS,
		"Namespace of the leader election Lease. Defaults to the Pod's namespace in a cluster; required outside one.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID,
		"Name of the leader election Lease. Defaults to meshstack-operator-<components>, so each component set elects its own leader.")
	fs.DurationVar(&o.LeaderElectionLeaseDuration, "leader-election-lease-duration", o.LeaderElectionLeaseDuration,
		"How long standbys wait after the leader's last renewal before one takes over (after a crash; a clean exit releases the Lease at once). Whole seconds.")
	fs.DurationVar(&o.LeaderElectionRenewDeadline, "leader-election-renew-deadline", o.LeaderElectionRenewDeadline,
		"How long the leader retries renewing its Lease before it gives up and the process exits; less than --leader-election-lease-duration.")
	fs.DurationVar(&o.LeaderElectionRetryPeriod, "leader-election-retry-period", o.LeaderElectionRetryPeriod,
		"How often the leader renews and standbys try to acquire the Lease; --leader-election-renew-deadline must exceed 1.2 times it (the retries' jitter).")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Client-side limit of requests per second to the API server. A negative value disables client-side limiting and leaves it to API Priority and Fairness.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst allowed above --kube-api-qps.")
	fs.Func("role-mapping", fmt.Sprintf("Comma-separated <meshProject role>=<ClusterRole> pairs; a role not listed here is rejected in MeshProject status. (default %q)",
		o.RoleMapping.String()), func(s string) error {
		m, err := replicator.ParseRoleMapping(s)
		o.RoleMapping = m
		return err
	})
	fs.StringVar(&o.UsernamePrefix, "oidc-username-prefix", o.UsernamePrefix,
		"Prefix of OIDC user names in RoleBindings; must equal kube-apiserver's --oidc-username-prefix.")
	fs.StringVar(&o.GroupsPrefix, "oidc-groups-prefix", o.GroupsPrefix,
		"Prefix of OIDC group names in RoleBindings; must equal kube-apiserver's --oidc-groups-prefix.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"MeshProjects reconciled in parallel.")
	fs.DurationVar(&o.ConflictRetryInterval, "conflict-retry-interval", o.ConflictRetryInterval,
		"How often a MeshProject blocked by a namespace or RoleBinding the operator does not own checks again.")
	fs.StringVar(&o.DefaultLandingZone, "default-landing-zone", o.DefaultLandingZone,
		"MeshLandingZone of the MeshProjects that name none. Empty: no baseline for them.")
	fs.DurationVar(&o.MeteringInterval, "metering-interval", o.MeteringInterval,
		"Time between two listings of all pods by the metering component.")
	fs.DurationVar(&o.MeteringWindow, "metering-window", o.MeteringWindow,
		"Length of a usage record's window, aligned to UTC; a whole number of seconds that divides 24h.")
	fs.Int64Var(&o.MeteringPageSize, "metering-page-size", o.MeteringPageSize,
		"Pods per list request of the metering component; bounds its memory.")
	fs.StringVar(&o.MeteringOutput, "metering-output", o.MeteringOutput,
		"Where usage records go: \"-\" for stdout, an https:// URL (http:// for loopback only) to POST them to, or a file to append to.")
	fs.StringVar(&o.MeteringCheckpoint, "metering-checkpoint", o.MeteringCheckpoint,
		"Name of the ConfigMap in the leader election namespace that holds the metering checkpoint, or names the generation of parts that does "+
			"(<name>-a-1, ... or <name>-b-1, ...). "+
			"Empty meters without a checkpoint, which loses usage on every restart.")
	fs.IntVar(&o.MeteringCheckpointParts, "metering-checkpoint-parts", o.MeteringCheckpointParts,
		"Parts the checkpoint may take per generation (<name>-a-1 ... <name>-a-<parts>, the same with b); the metering Role must allow "+
			"updating each and <name>, and getting <name>-1 ... <name>-<parts-1> (the layout before generations).")
	fs.Func("metering-resources", fmt.Sprintf("Comma-separated resources to meter: %s, optionally %s (needs get/list on them). (default %q)",
		metering.ResourcePods, metering.ResourcePersistentVolumeClaims, strings.Join(o.MeteringResources, ",")), func(s string) error {
		o.MeteringResources = splitList(s)
		_, err := metering.ParseResources(o.MeteringResources)
		return err
	})
	fs.StringVar(&o.MeteringCluster, "metering-cluster", o.MeteringCluster,
		"Name of this cluster in every usage record (field cluster) and in the records' ids and Idempotency-Keys, so that two clusters "+
			"never share an id: a DNS label, unique among the clusters a receiver gets records from. Empty: no cluster, and the ids of earlier releases.")
	fs.StringVar(&o.MeteringAttribution, "metering-attribution", o.MeteringAttribution,
		fmt.Sprintf("How records name their customer and project: %q reads the labels the replicator puts on the namespaces it manages "+
			"(needs list on namespaces; every other namespace is nobody's), %q splits names <customer>-<project> except kube-*, "+
			"openshift-* and the operator's namespace (a guess, needs no role).", metering.AttributionProject, metering.AttributionNamespaceName))
	fs.StringVar(&o.MeteringUnmanagedNamespaces, "metering-unmanaged-namespaces", o.MeteringUnmanagedNamespaces,
		fmt.Sprintf("Whether namespaces that are no project's (see --metering-attribution) get usage records: %q or %q.",
			metering.UnmanagedInclude, metering.UnmanagedExclude))
	fs.IntVar(&o.MeteringHTTP.BatchSize, "metering-http-batch-size", o.MeteringHTTP.BatchSize,
		"Records per POST of an http(s) --metering-output.")
	fs.StringVar(&o.MeteringHTTP.BearerTokenFile, "metering-http-bearer-token-file", o.MeteringHTTP.BearerTokenFile,
		"File with a bearer token for an http(s) --metering-output, read again once it is 50 s old and after a 401 (a projected ServiceAccount token works).")
	fs.StringVar(&o.MeteringHTTP.CAFile, "metering-http-ca-file", o.MeteringHTTP.CAFile,
		"PEM CA bundle that an https --metering-output's certificate may also chain to.")
	fs.StringVar(&o.MeteringHTTP.ClientCertFile, "metering-http-client-cert-file", o.MeteringHTTP.ClientCertFile,
		"PEM client certificate for mutual TLS with an https --metering-output (with --metering-http-client-key-file).")
	fs.StringVar(&o.MeteringHTTP.ClientKeyFile, "metering-http-client-key-file", o.MeteringHTTP.ClientKeyFile,
		"PEM private key of --metering-http-client-cert-file.")
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ParseComponents parses a --components value.
func ParseComponents(s string) ([]string, error) {
	var components []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !slices.Contains(AllComponents, c) {
			return nil, fmt.Errorf("unknown component %q: want one or more of %s", c, strings.Join(AllComponents, ", "))
		}
		if !slices.Contains(components, c) {
			components = append(components, c)
		}
	}
	if len(components) == 0 {
		return nil, fmt.Errorf("no component selected: want one or more of %s", strings.Join(AllComponents, ", "))
	}
	return components, nil
}

// Runs reports whether the named component is selected.
func (o *Options) Runs(component string) bool { return slices.Contains(o.Components, component) }

// Validate checks option combinations the flag parsers cannot.
func (o *Options) Validate() error {
	if o.MaxConcurrentReconciles < 1 {
		return fmt.Errorf("--max-concurrent-reconciles must be at least 1")
	}
	if err := o.validateLeaderElection(); err != nil {
		return err
	}
	if o.KubeAPIQPS > 0 && o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1")
	}
	for _, f := range []struct{ name, prefix string }{{"--oidc-username-prefix", o.UsernamePrefix}, {"--oidc-groups-prefix", o.GroupsPrefix}} {
		if replicator.ReservedSubjectName(f.prefix) {
			return fmt.Errorf("%s %q would make every user or group a \"system:\" name, which Kubernetes reserves for its own; the operator binds none of them", f.name, f.prefix)
		}
	}
	if o.DefaultLandingZone != "" {
		if errs := validation.IsDNS1123Subdomain(o.DefaultLandingZone); len(errs) > 0 {
			return fmt.Errorf("--default-landing-zone %q is not a MeshLandingZone name: %s", o.DefaultLandingZone, strings.Join(errs, "; "))
		}
	}
	if err := metering.ValidateSettings(o.MeteringInterval, o.MeteringWindow, o.MeteringPageSize, o.MeteringOutput); err != nil {
		return err
	}
	if _, err := metering.ParseResources(o.MeteringResources); err != nil {
		return err
	}
	if err := usage.ValidateCluster(o.MeteringCluster); err != nil {
		return err
	}
	if err := metering.ValidateAttribution(o.MeteringAttribution, o.MeteringUnmanagedNamespaces); err != nil {
		return err
	}
	if o.MeteringCheckpoint != "" && o.MeteringCheckpointParts < 1 {
		return fmt.Errorf("--metering-checkpoint-parts must be at least 1")
	}
	if o.MeteringHTTP.BatchSize < 1 {
		return fmt.Errorf("--metering-http-batch-size must be at least 1")
	}
	return nil
}

// validateLeaderElection checks the leader election timings as client-go's
// leader elector does at start, so that a bad combination fails at once and
// names the flags.
func (o *Options) validateLeaderElection() error {
	lease, renew, retry := o.LeaderElectionLeaseDuration, o.LeaderElectionRenewDeadline, o.LeaderElectionRetryPeriod
	switch {
	case lease < time.Second || lease%time.Second != 0:
		return fmt.Errorf("--leader-election-lease-duration must be a whole number of seconds (the Lease stores seconds), got %s", lease)
	case retry <= 0:
		return fmt.Errorf("--leader-election-retry-period must be positive, got %s", retry)
	case renew >= lease:
		return fmt.Errorf("--leader-election-renew-deadline (%s) must be less than --leader-election-lease-duration (%s)", renew, lease)
	case renew <= time.Duration(leaderelection.JitterFactor*float64(retry)):
		return fmt.Errorf("--leader-election-renew-deadline (%s) must be more than %v times --leader-election-retry-period (%s)",
			renew, leaderelection.JitterFactor, retry)
	}
	return nil
}
