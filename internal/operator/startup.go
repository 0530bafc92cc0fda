package operator

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
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
	logged := false
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if !logged {
			ctrl.Log.WithName("setup").Info("Waiting for the API server", "for", what, "error", err.Error())
			logged = true
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(startupRetryInterval):
		}
	}
}
