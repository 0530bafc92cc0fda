// Package operator assembles the manager from the selected components and
// their command-line options. cmd/ and the tests share it, so the tests run
// the same wiring the binary does.
package operator

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshcloud/meshstack-operator/internal/metering"
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
	HealthProbeBindAddress string
	LeaderElect            bool
	LeaderElectionNS       string
	LeaderElectionID       string

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

	// SkipNameValidation lets tests start several managers in one process.
	SkipNameValidation bool
}

// DefaultOptions returns the defaults the flags document.
func DefaultOptions() Options {
	mapping, _ := replicator.ParseRoleMapping(replicator.DefaultRoleMapping)
	return Options{
		Components:              slices.Clone(AllComponents),
		MetricsBindAddress:      ":8080",
		HealthProbeBindAddress:  ":8081",
		KubeAPIQPS:              500,
		KubeAPIBurst:            1000,
		RoleMapping:             mapping,
		UsernamePrefix:          "mesh:",
		GroupsPrefix:            "",
		MaxConcurrentReconciles: 10,
		ConflictRetryInterval:   replicator.DefaultConflictRetryInterval,
		MeteringInterval:        metering.DefaultInterval,
		MeteringWindow:          metering.DefaultWindow,
		MeteringPageSize:        metering.DefaultPageSize,
		MeteringOutput:          metering.StdoutOutput,
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
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address the health (/healthz) and readiness (/readyz) probes bind to. \"0\" disables them.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect,
		"Elect a leader with a Lease, so that only one replica works at a time.")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS,
		"Namespace of the leader election Lease. Defaults to the Pod's namespace in a cluster; required outside one.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID,
		"Name of the leader election Lease. Defaults to meshstack-operator-<components>, so each component set elects its own leader.")
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
		"Where usage records go: \"-\" for stdout, or a file to append to, which is also the checkpoint a restart resumes from (with <file>.state next to it).")
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
	if o.KubeAPIQPS > 0 && o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1")
	}
	if o.DefaultLandingZone != "" {
		if errs := validation.IsDNS1123Subdomain(o.DefaultLandingZone); len(errs) > 0 {
			return fmt.Errorf("--default-landing-zone %q is not a MeshLandingZone name: %s", o.DefaultLandingZone, strings.Join(errs, "; "))
		}
	}
	if err := metering.ValidateSettings(o.MeteringInterval, o.MeteringWindow, o.MeteringPageSize, o.MeteringOutput); err != nil {
		return err
	}
	return nil
}
