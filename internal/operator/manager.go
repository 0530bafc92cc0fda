package operator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
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

	leaderElectionID := o.LeaderElectionID
	if leaderElectionID == "" {
		leaderElectionID = "meshstack-operator-" + strings.Join(o.Components, "-")
	}
	mgrOpts := ctrl.Options{
		Scheme:                  Scheme,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNS,
		// Release the lease on a clean shutdown so a new replica takes over
		// at once instead of after the lease expires.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &o.SkipNameValidation},
	}
	landingZones := false
	var err error
	if o.Runs(ComponentReplicator) {
		mgrOpts.Cache = cache.Options{ByObject: replicator.ManagedObjectsCacheOptions()}
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
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding readiness check: %w", err)
	}

	if o.Runs(ComponentReplicator) {
		r := &replicator.MeshProjectReconciler{
			Client:                mgr.GetClient(),
			APIReader:             mgr.GetAPIReader(),
			Recorder:              eventRecorder(cfg, mgr),
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
			if err := z.SetupWithManager(mgr); err != nil {
				return nil, fmt.Errorf("setting up the landing zone controller: %w", err)
			}
		}
	}
	if o.Runs(ComponentMetering) {
		// The metering identity may only get and list pods: it reads through
		// the uncached APIReader, so this component starts no informer.
		m := &metering.Meter{
			Reader:   mgr.GetAPIReader(),
			Interval: o.MeteringInterval,
			Window:   o.MeteringWindow,
			PageSize: o.MeteringPageSize,
			Output:   o.MeteringOutput,
			Log:      mgr.GetLogger().WithName("metering"),
		}
		if err := mgr.Add(m); err != nil {
			return nil, fmt.Errorf("setting up metering: %w", err)
		}
	}
	return mgr, nil
}

// landingZonesPermitted asks, once at start, whether the replicator's
// identity may use landing zones, and logs what is missing when not.
func landingZonesPermitted(cfg *rest.Config) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok, missing, err := LandingZonesPermitted(ctx, cfg)
	if err != nil {
		return false, err
	}
	if !ok {
		ctrl.Log.WithName("setup").Info("Landing zones are not permitted: the identity lacks the ClusterRole meshstack-operator-landing-zones "+
			"(chart value landingZones.enabled); projects that name a zone report LandingZonesNotPermitted", "missing", missing)
	}
	return ok, nil
}
