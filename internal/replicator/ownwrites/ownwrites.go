// Package ownwrites keeps the watch events of the replicator's own writes
// from starting another pass over the project the write was for.
package ownwrites

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Pending remembers the resourceVersion of each object the operator
// created or updated until the watch event of that write arrives, so that
// the event does not start another pass over a project the write has just
// made as it wants it: a zone edit reaching 10,000 projects would
// otherwise cost 20,000 passes. Events of anyone else's change (another
// resourceVersion) start a pass as always. An entry lives until the next
// event of its object, so there is at most one per managed object.
type Pending struct {
	mu      sync.Mutex
	pending map[types.UID]string
}

// New returns an empty record of writes.
func New() *Pending {
	return &Pending{pending: map[types.UID]string{}}
}

// Recording returns c, recording its creates and updates of the kinds whose
// watch events map to their project: Namespaces, RoleBindings,
// ResourceQuotas, LimitRanges and NetworkPolicies.
func (w *Pending) Recording(c client.Client) client.Client {
	return recordingClient{Client: c, writes: w}
}

// wrote records obj as the operator's own write, as the API server
// returned it.
func (w *Pending) wrote(obj client.Object) {
	if obj.GetUID() == "" || obj.GetResourceVersion() == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[obj.GetUID()] = obj.GetResourceVersion()
}

// echo reports whether obj, from a watch event, is exactly the operator's
// last write of it, and forgets that write either way.
func (w *Pending) echo(obj client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	rv, ok := w.pending[obj.GetUID()]
	delete(w.pending, obj.GetUID())
	return ok && rv == obj.GetResourceVersion()
}

// NotEchoes lets through every event but those of the operator's own
// writes.
func (w *Pending) NotEchoes() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.echo(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.echo(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			w.echo(e.Object)
			return true
		},
	}
}

// recordingClient records the creates and updates of the kinds whose
// events map to their project (see Recording) in writes.
type recordingClient struct {
	client.Client
	writes *Pending
}

func (c recordingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	err := c.Client.Create(ctx, obj, opts...)
	c.record(obj, err)
	return err
}

func (c recordingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	err := c.Client.Update(ctx, obj, opts...)
	c.record(obj, err)
	return err
}

func (c recordingClient) record(obj client.Object, err error) {
	if err != nil {
		return
	}
	switch obj.(type) {
	case *corev1.Namespace, *rbacv1.RoleBinding, *corev1.ResourceQuota, *corev1.LimitRange, *networkingv1.NetworkPolicy:
		c.writes.wrote(obj)
	}
}
