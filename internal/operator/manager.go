package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/eventrecorder"
	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/internal/replicator/informercache"
)

// Scheme knows the built-in types and the meshcloud.io API.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(meshv1.AddToScheme(Scheme))
}

// NewManager builds a manager that runs the selected components against cfg.
// cfg is copied; its rate limits are set from the options.
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.KubeAPIQPS), o.KubeAPIBurst
	// Built-in kinds in protobuf, which the API server encodes and the
	// operator decodes several times faster than JSON; CRDs in JSON.
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"

	leaderElectionID := o.LeaderElectionID
	if leaderElectionID == "" {
		leaderElectionID = "meshstack-operator-" + strings.Join(o.Components, "-")
	}
	mgrOpts := ctrl.Options{
		Scheme:                  Scheme,
		Metrics:                 metricsServerOptions(o),
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		PprofBindAddress:        o.PprofBindAddress,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNS,
		LeaseDuration:           ptr.To(o.LeaderElectionLeaseDuration),
		RenewDeadline:           ptr.To(o.LeaderElectionRenewDeadline),
		RetryPeriod:             ptr.To(o.LeaderElectionRetryPeriod),
		// Release the lease on a clean shutdown so a new replica takes over
		// at once instead of after the lease expires.
		LeaderElectionReleaseOnCancel: true,
		// Standbys start their informers too (warm-up), so that they are
		// ready to take over at once and their readiness means something.
		Controller: config.Controller{SkipNameValidation: &o.SkipNameValidation, EnableWarmup: ptr.To(true)},
	}
	landingZones := false
	var err error
	if o.Runs(ComponentReplicator) {
		mgrOpts.Cache = informercache.Options()
		if landingZones, err = landingZonesPermitted(cfg); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding health check: %w", err)
	}
	// Ready means able to work, leader or not: the informer caches have
	// synced (the replicator's; metering has none), and the metering
	// checkpoint can be read.
	if err := mgr.AddReadyzCheck("informers", cachesSynced(mgr)); err != nil {
		return nil, fmt.Errorf("adding readiness check: %w", err)
	}

	if o.Runs(ComponentReplicator) {
		r := &replicator.MeshProjectReconciler{
			Client:                mgr.GetClient(),
			APIReader:             mgr.GetAPIReader(),
			Recorder:              eventrecorder.For(cfg, mgr),
			RoleMapping:           o.RoleMapping,
			UsernamePrefix:        o.UsernamePrefix,
			GroupsPrefix:          o.GroupsPrefix,
			ConflictRetryInterval: o.ConflictRetryInterval,
			LandingZonesPermitted: landingZones,
			DefaultLandingZone:    o.DefaultLandingZone,
		}
		if err := r.SetupWithManager(context.Background(), mgr, o.MaxConcurrentReconciles); err != nil {
			return nil, fmt.Errorf("setting up the replicator: %w", err)
		}
		if landingZones {
			z := &replicator.MeshLandingZoneReconciler{Client: mgr.GetClient(), DefaultLandingZone: o.DefaultLandingZone}
			if err := z.SetupWithManager(context.Background(), mgr); err != nil {
				return nil, fmt.Errorf("setting up the landing zone controller: %w", err)
			}
		}
	}
	if o.Runs(ComponentMetering) {
		// The metering identity may only get and list pods: it reads through
		// the uncached APIReader, so this component starts no informer.
		m := &metering.Meter{
			Reader:      mgr.GetAPIReader(),
			Interval:    o.MeteringInterval,
			Window:      o.MeteringWindow,
			PageSize:    o.MeteringPageSize,
			Resources:   o.MeteringResources,
			Cluster:     o.MeteringCluster,
			Attribution: o.MeteringAttribution, UnmanagedNamespaces: o.MeteringUnmanagedNamespaces,
			Output: o.MeteringOutput,
			HTTP:   o.MeteringHTTP,
			Stdout: o.MeteringStdout,
			Log:    mgr.GetLogger().WithName("metering"),
		}
		// The operator's own namespace is never attributed by name; where
		// it cannot be found, no namespace is so excepted.
		m.ReleaseNamespace, _ = checkpointNamespace(o.LeaderElectionNS)
		if o.MeteringCheckpoint != "" {
			namespace, err := checkpointNamespace(o.LeaderElectionNS)
			if err != nil {
				return nil, err
			}
			// Reads go past the cache: the identity may not list or watch
			// ConfigMaps.
			m.Checkpoint = &checkpoint.ConfigMapStore{
				Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(),
				Namespace: namespace, Name: o.MeteringCheckpoint, MaxParts: o.MeteringCheckpointParts,
				Log: mgr.GetLogger().WithName("metering"),
			}
		}
		if err := mgr.Add(m); err != nil {
			return nil, fmt.Errorf("setting up metering: %w", err)
		}
		if err := mgr.AddReadyzCheck("metering-checkpoint", m.ReadyCheck); err != nil {
			return nil, fmt.Errorf("adding readiness check: %w", err)
		}
	}
	return mgr, nil
}

// inClusterNamespaceFile holds the Pod's namespace in a cluster.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// checkpointNamespace is the namespace of the metering checkpoint: the
// leader election namespace, which in a cluster defaults to the Pod's.
func checkpointNamespace(leaderElectionNS string) (string, error) {
	if leaderElectionNS != "" {
		return leaderElectionNS, nil
	}
	data, err := os.ReadFile(inClusterNamespaceFile)
	if ns := strings.TrimSpace(string(data)); err == nil && ns != "" {
		return ns, nil
	}
	return "", fmt.Errorf("the metering checkpoint lives in the leader election namespace: outside a cluster set --leader-election-namespace, or --metering-checkpoint=\"\" to meter without a checkpoint")
}

// cachesSynced is ready once the manager's informer caches have synced. A
// probe waits at most a second; the kubelet probes again.
func cachesSynced(mgr ctrl.Manager) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("the informer caches have not synced yet")
		}
		return nil
	}
}
