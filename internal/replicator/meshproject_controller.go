// Package replicator holds the replicator: the reconciler that turns each
// MeshProject into a namespace and RoleBindings.
package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// The rules below are the seed's meshfed-service ClusterRole, verb for verb,
// plus what the operator needs for its own API and events. There is no
// "patch" on namespaces or RoleBindings, so the operator only ever creates,
// updates and deletes them.
//
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create;delete;update
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=create;delete;update
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=admin;edit;view
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshprojects,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshprojects/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=meshcloud.io,resources=meshprojects/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io;"",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=meshcloud,resources=leases,verbs=get;list;watch;create;update;patch;delete

// DefaultConflictRetryInterval is how often a project blocked by an object
// the operator does not own (and so does not watch) looks again.
const DefaultConflictRetryInterval = 30 * time.Second

// MeshProjectReconciler reconciles MeshProjects.
type MeshProjectReconciler struct {
	// Client reads from the informer cache, which holds only managed
	// namespaces and RoleBindings.
	Client client.Client
	// APIReader reads past the cache: it tells an object we do not manage
	// from one that is not there.
	APIReader client.Reader
	Recorder  events.EventRecorder

	RoleMapping RoleMapping
	// UsernamePrefix and GroupsPrefix must equal kube-apiserver's
	// --oidc-username-prefix and --oidc-groups-prefix.
	UsernamePrefix string
	GroupsPrefix   string
	// ConflictRetryInterval defaults to DefaultConflictRetryInterval.
	ConflictRetryInterval time.Duration
}

// ManagedObjectsCacheOptions restricts the manager's cache to the namespaces
// and RoleBindings the operator created, so that its memory grows with the
// number of projects and not with the cluster.
func ManagedObjectsCacheOptions() map[client.Object]cache.ByObject {
	managed := labels.SelectorFromSet(labels.Set{meshv1.LabelManagedBy: meshv1.ManagedByValue})
	return map[client.Object]cache.ByObject{
		&corev1.Namespace{}:   {Label: managed},
		&rbacv1.RoleBinding{}: {Label: managed},
	}
}

// SetupWithManager registers the reconciler and its watches.
func (r *MeshProjectReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	if r.ConflictRetryInterval == 0 {
		r.ConflictRetryInterval = DefaultConflictRetryInterval
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("meshproject").
		// Status updates do not change the generation; the operator's own
		// status writes need no further pass.
		For(&meshv1.MeshProject{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(ownerOf)).
		Watches(&rbacv1.RoleBinding{}, handler.EnqueueRequestsFromMapFunc(ownerOf)).
		// Only existence matters for ClusterRoles, so metadata is enough.
		WatchesMetadata(&rbacv1.ClusterRole{},
			handler.EnqueueRequestsFromMapFunc(r.projectsUsingClusterRole),
			builder.WithPredicates(r.mappedClusterRoleAppearsOrGoes())).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

// ownerOf maps a managed object to the MeshProject named in its ownership
// annotation.
func ownerOf(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[meshv1.AnnotationMeshProject]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
}

func (r *MeshProjectReconciler) mappedClusterRoleAppearsOrGoes() predicate.Predicate {
	mapped := map[string]bool{}
	for _, cr := range r.RoleMapping.ClusterRoles() {
		mapped[cr] = true
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return mapped[e.Object.GetName()] },
		DeleteFunc:  func(e event.DeleteEvent) bool { return mapped[e.Object.GetName()] },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func (r *MeshProjectReconciler) projectsUsingClusterRole(ctx context.Context, obj client.Object) []reconcile.Request {
	var projects meshv1.MeshProjectList
	if err := r.Client.List(ctx, &projects); err != nil {
		log.FromContext(ctx).Error(err, "Listing MeshProjects for a ClusterRole change", "clusterRole", obj.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for i := range projects.Items {
		for _, rb := range projects.Items[i].Spec.RoleBindings {
			if r.RoleMapping[rb.Role] == obj.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&projects.Items[i])})
				break
			}
		}
	}
	return reqs
}

// Reconcile brings one MeshProject's namespace and RoleBindings in line with
// its spec and reports the outcome in its status.
func (r *MeshProjectReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	project := &meshv1.MeshProject{}
	if err := r.Client.Get(ctx, req.NamespacedName, project); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("meshProject", klog.KObj(project), "projectNamespace", project.NamespaceName())
	ctx = log.IntoContext(ctx, logger)

	if !project.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, project)
	}
	if err := r.ensureFinalizer(ctx, project); err != nil {
		return ctrl.Result{}, err
	}

	before := project.Status.DeepCopy()
	outcome, err := r.reconcileNormal(ctx, project)
	outcome.access.emit(r.Recorder, project)
	r.setStatus(project, outcome, err)
	if statusErr := r.patchStatus(ctx, project, before); statusErr != nil {
		err = errors.Join(err, statusErr)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if outcome.retry {
		return ctrl.Result{RequeueAfter: r.ConflictRetryInterval}, nil
	}
	return ctrl.Result{}, nil
}

// reconcileNormal runs the steps that converge a live project. A step that
// cannot proceed because of the spec or of objects the operator does not own
// reports it in the outcome; only transient failures are errors.
func (r *MeshProjectReconciler) reconcileNormal(ctx context.Context, project *meshv1.MeshProject) (*outcome, error) {
	out := &outcome{}
	ns, err := r.reconcileNamespace(ctx, project, out)
	if err != nil || ns == nil {
		return out, err
	}
	return out, r.reconcileRoleBindings(ctx, project, ns, out)
}

func (r *MeshProjectReconciler) ensureFinalizer(ctx context.Context, project *meshv1.MeshProject) error {
	if controllerutil.ContainsFinalizer(project, meshv1.Finalizer) {
		return nil
	}
	original := project.DeepCopy()
	controllerutil.AddFinalizer(project, meshv1.Finalizer)
	// A JSON merge patch replaces the whole finalizer list: the optimistic
	// lock keeps it from dropping a finalizer someone else added meanwhile.
	if err := r.Client.Patch(ctx, project, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// reconcileDelete applies the deletion policy, then lets the MeshProject go.
func (r *MeshProjectReconciler) reconcileDelete(ctx context.Context, project *meshv1.MeshProject) error {
	if !controllerutil.ContainsFinalizer(project, meshv1.Finalizer) {
		return nil
	}
	var err error
	if project.Spec.DeletionPolicy == meshv1.DeletionPolicyRetain {
		err = r.releaseNamespace(ctx, project)
	} else {
		err = r.deleteNamespace(ctx, project)
	}
	if err != nil {
		return err
	}
	original := project.DeepCopy()
	controllerutil.RemoveFinalizer(project, meshv1.Finalizer)
	if err := r.Client.Patch(ctx, project, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	return nil
}
