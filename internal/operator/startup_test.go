package operator

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestUntilAnswered(t *testing.T) {
	startupRetryInterval = time.Millisecond
	t.Cleanup(func() { startupRetryInterval = time.Second })
	unreachable := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

	t.Run("waits while the API server cannot be reached or is not ready", func(t *testing.T) {
		// What a restarted kube-apiserver answers in turn: nothing, 503, and
		// 403 until its authorizer has loaded RBAC.
		answers := []error{unreachable, apierrors.NewServiceUnavailable("starting"),
			apierrors.NewForbidden(schema.GroupResource{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, "", errors.New("no RBAC yet")), nil}
		calls := 0
		err := untilAnswered(context.Background(), "test", func(context.Context) error { calls++; return answers[calls-1] })
		if err != nil || calls != len(answers) {
			t.Errorf("err %v after %d calls, want success after %d", err, calls, len(answers))
		}
	})
	t.Run("gives up when the context ends, with the last error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := untilAnswered(ctx, "test", func(context.Context) error { return unreachable })
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err %v, want the connection error", err)
		}
	})
}
