package operator

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshcloud/meshstack-operator/internal/permissions"
)

// startupRetryInterval is how often a start-up request is tried again.
var startupRetryInterval = time.Second

// untilAnswered calls f until it succeeds or ctx ends, every second, and
// returns f's last error. A replica that its Deployment restarts while
// kube-apiserver is down (a leader exits when it cannot renew its Lease)
// thus waits for the API server instead of exiting at once and falling
// into CrashLoopBackOff, whose growing delay would hold it back long after
// the API server is back. Every error is tried again: just after it
// starts, kube-apiserver answers even a SelfSubjectAccessReview with 403
// until its authorizer has loaded the RBAC objects.
func untilAnswered(ctx context.Context, what string, f func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, startupRetryInterval, true, func(ctx context.Context) (bool, error) {
		err := f(ctx)
		if err != nil && last == nil {
			ctrl.Log.WithName("setup").Info("Waiting for the API server", "for", what, "error", err.Error())
		}
		last = err
		return err == nil, nil
	})
	if err != nil && last != nil {
		// The context ended: what the API server last said explains more
		// than that.
		return last
	}
	return err
}

// landingZonesPermitted asks, once at start, whether the replicator's
// identity may use landing zones, and logs what is missing when not. It
// waits up to 30 s for an API server that cannot be reached.
func landingZonesPermitted(cfg *rest.Config) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ok bool
	var missing []string
	err := untilAnswered(ctx, "the landing-zone rights", func(ctx context.Context) error {
		var err error
		ok, missing, err = permissions.LandingZonesPermitted(ctx, cfg)
		return err
	})
	if err != nil {
		return false, err
	}
	if !ok {
		ctrl.Log.WithName("setup").Info("Landing zones are not permitted: the identity lacks the ClusterRole meshstack-operator-landing-zones "+
			"(chart value landingZones.enabled); projects that name a zone report LandingZonesNotPermitted", "missing", missing)
	}
	return ok, nil
}
