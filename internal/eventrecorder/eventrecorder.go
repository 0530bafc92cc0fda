// Package eventrecorder chooses the events API the operator writes its
// Events through: events.k8s.io, or core/v1 where the identity may only
// create those. Both store the same Events; least-privilege roles in the
// wild grant either.
package eventrecorder

import (
	"context"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshcloud/meshstack-operator/internal/permissions"
)

// eventsReporter names the operator in the Events it writes.
const eventsReporter = "meshstack-operator"

// APIGroup asks the API server, with SelfSubjectAccessReviews, which events
// API cfg's identity may create Events in: "events.k8s.io", or "" (core/v1)
// when only that one is allowed.
func APIGroup(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	allowed := func(group string) (bool, error) {
		ok, err := permissions.SelfAllowed(ctx, cs, authorizationv1.ResourceAttributes{
			Namespace: metav1.NamespaceDefault, Verb: "create", Group: group, Resource: "events",
		})
		if err != nil {
			return false, fmt.Errorf("asking whether Events may be created: %w", err)
		}
		return ok, nil
	}
	if ok, err := allowed("events.k8s.io"); err != nil || ok {
		return "events.k8s.io", err
	}
	if ok, err := allowed(""); err != nil || ok {
		return "", err
	}
	return "events.k8s.io", nil
}

// For returns mgr's recorder for the events API cfg's identity may write
// to, the events.k8s.io one when in doubt.
func For(cfg *rest.Config, mgr ctrl.Manager) events.EventRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	group, err := APIGroup(ctx, cfg)
	if err != nil {
		mgr.GetLogger().Error(err, "Assuming Events may be written through events.k8s.io")
	}
	if group == "" {
		mgr.GetLogger().Info("Writing Events through the core/v1 API: the identity may not create events.k8s.io Events")
		return coreEventRecorder{mgr.GetEventRecorderFor(eventsReporter)} //nolint:staticcheck // chosen for RBAC, see APIGroup
	}
	return mgr.GetEventRecorder(eventsReporter)
}

// coreEventRecorder writes through the core/v1 events API.
type coreEventRecorder struct{ record.EventRecorder }

func (c coreEventRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	c.EventRecorder.Eventf(regarding, eventtype, reason, note, args...)
}
