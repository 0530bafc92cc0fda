// Package replicator holds the replicator: the reconciler that turns each
// MeshProject into a namespace and RoleBindings.
package replicator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator/ownwrites"
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
	// namespaces, RoleBindings, ResourceQuotas, LimitRanges and
	// NetworkPolicies.
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

	// LandingZonesPermitted says whether the operator's identity holds the
	// landing-zone rights (asked at start). Without them the operator
	// never reads or watches MeshLandingZones, ResourceQuotas, LimitRanges
	// or NetworkPolicies.
	LandingZonesPermitted bool
	// DefaultLandingZone applies to projects that name none; empty: none.
	DefaultLandingZone string

	projects *cachedProjects
}

// SetupWithManager registers the reconciler and its watches. Landing-zone
// kinds are watched only when the identity may.
func (r *MeshProjectReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, maxConcurrentReconciles int) error {
	if r.ConflictRetryInterval == 0 {
		r.ConflictRetryInterval = DefaultConflictRetryInterval
	}
	projects, err := cachedProjectsOf(ctx, mgr, r.DefaultLandingZone)
	if err != nil {
		return err
	}
	r.projects = projects
	projectStateCollector.projects.Store(projects)
	// The watch events of the operator's own writes start no pass.
	writes := ownwrites.New()
	r.Client = writes.Recording(r.Client)
	owned := builder.WithPredicates(writes.NotEchoes())
	b := ctrl.NewControllerManagedBy(mgr).
		Named("meshproject").
		// Status updates do not change the generation; the operator's own
		// status writes need no further pass.
		For(&meshv1.MeshProject{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(ownerOf), owned).
		Watches(&rbacv1.RoleBinding{}, handler.EnqueueRequestsFromMapFunc(ownerOf), owned).
		// Only existence matters for ClusterRoles, so metadata is enough.
		WatchesMetadata(&rbacv1.ClusterRole{},
			handler.EnqueueRequestsFromMapFunc(r.projectsUsingClusterRole),
			builder.WithPredicates(r.mappedClusterRoleAppearsOrGoes())).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles})
	if r.LandingZonesPermitted {
		b = b.
			// A zone edit changes its generation; its status does not.
			Watches(&meshv1.MeshLandingZone{}, handler.EnqueueRequestsFromMapFunc(r.projectsInZone),
				builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			Watches(&corev1.ResourceQuota{}, handler.EnqueueRequestsFromMapFunc(ownerOf), owned).
			Watches(&corev1.LimitRange{}, handler.EnqueueRequestsFromMapFunc(ownerOf), owned).
			Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(ownerOf), owned)
	}
	return b.Complete(r)
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

// mappedClusterRoleAppearsOrGoes passes the creation and deletion of
// ClusterRoles that --role-mapping maps a role to, and, with landing zones,
// of any ClusterRole: which ones zones map to is decided by
// projectsUsingClusterRole, which may read the cache with the controller's
// context (a predicate has none, and a cache read that waits for an
// informer must not outlive the manager).
func (r *MeshProjectReconciler) mappedClusterRoleAppearsOrGoes() predicate.Predicate {
	global := r.RoleMapping.mapping()
	mapped := func(obj client.Object) bool {
		return r.LandingZonesPermitted || global.maps(obj.GetName())
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return mapped(e.Object) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return mapped(e.Object) },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// mappingsOf returns the mappings that map a role to clusterRole, by zone
// name ("" for --role-mapping).
func (r *MeshProjectReconciler) mappingsOf(ctx context.Context, clusterRole string) map[string]roleMapping {
	out := map[string]roleMapping{}
	if global := r.RoleMapping.mapping(); global.maps(clusterRole) {
		out[""] = global
	}
	if !r.LandingZonesPermitted {
		return out
	}
	var zones meshv1.MeshLandingZoneList
	if err := r.Client.List(ctx, &zones); err != nil {
		log.FromContext(ctx).Error(err, "Listing MeshLandingZones for a ClusterRole change", "clusterRole", clusterRole)
		return out
	}
	for i := range zones.Items {
		if m := zoneMapping(zones.Items[i].Name, zones.Items[i].Spec.RoleMappings); m.maps(clusterRole) {
			out[zones.Items[i].Name] = m
		}
	}
	return out
}

// projectsUsingClusterRole maps a ClusterRole to the projects with a role
// that maps to it: through a zone's roleMappings (found by the zone index)
// or through --role-mapping.
func (r *MeshProjectReconciler) projectsUsingClusterRole(ctx context.Context, obj client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for zone, m := range r.mappingsOf(ctx, obj.GetName()) {
		projects, err := r.projectsMappedBy(zone)
		if err != nil {
			log.FromContext(ctx).Error(err, "Mapping a ClusterRole to the projects using it", "clusterRole", obj.GetName())
			continue
		}
		for _, project := range projects {
			for _, rb := range project.Spec.RoleBindings {
				if slices.Contains(m.roles[rb.Role], obj.GetName()) {
					reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(project)})
					break
				}
			}
		}
	}
	return reqs
}

// projectsMappedBy returns the projects a mapping applies to: those in zone,
// or all for --role-mapping ("").
func (r *MeshProjectReconciler) projectsMappedBy(zone string) ([]*meshv1.MeshProject, error) {
	if zone == "" {
		return r.projects.all(), nil
	}
	return r.projects.inZone(zone)
}

// Reconcile brings one MeshProject's namespace, RoleBindings and landing
// zone baseline in line with its spec and reports the outcome in its status.
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

// scope is what the steps of one pass share.
type scope struct {
	project *meshv1.MeshProject
	out     *outcome
	// zone is the landing zone applied in this pass; nil for none.
	zone *meshv1.MeshLandingZone
	// baseline is true when the zone's objects converge in this pass (to
	// nothing when zone is nil). It is false when the project names a zone
	// that cannot be applied now: the objects it has are left as they are.
	baseline bool
	// mapping maps the project's roles to ClusterRoles.
	mapping roleMapping
	// ns is the project's namespace once it is usable.
	ns *corev1.Namespace
	// withoutNamespace holds back the namespace of a project that has
	// none yet (its zone cannot be applied).
	withoutNamespace bool
	// zoneHeld holds back the zone's objects: the zone named cannot be
	// applied now, so the namespace keeps the ones it has.
	zoneHeld bool
	// zoneFailed holds back every later step: the zone could not be read.
	zoneFailed bool
}

// step is one named part of a pass. A step that cannot proceed because of
// the spec or of objects the operator does not own reports it in the
// outcome; only transient failures are errors. Its condition reports it
// in the status; several steps may share one.
type step struct {
	name      string
	condition string
	run       func(context.Context, *scope) error
	// waitsFor returns why an earlier step holds this one back (a reason
	// of the Unknown condition), or "" to run it.
	waitsFor func(*scope) string
}

// waitsForZone holds back the namespace of a project that has none yet
// while its zone cannot be applied, and everything when the zone could
// not be read.
func waitsForZone(s *scope) string {
	if s.withoutNamespace || s.zoneFailed {
		return meshv1.ReasonWaitingForLandingZone
	}
	return ""
}

// waitsForNamespace holds back the steps that work in the namespace.
func waitsForNamespace(s *scope) string {
	if s.ns == nil {
		return meshv1.ReasonWaitingForNamespace
	}
	return ""
}

// waitsForBaseline holds back the zone's objects while the zone named
// cannot be applied: the namespace keeps the ones it has.
func waitsForBaseline(s *scope) string {
	if s.zoneHeld {
		return meshv1.ReasonWaitingForLandingZone
	}
	return waitsForNamespace(s)
}

// reconcileNormal runs the steps that converge a live project.
func (r *MeshProjectReconciler) reconcileNormal(ctx context.Context, project *meshv1.MeshProject) (*outcome, error) {
	s := &scope{project: project, out: &outcome{}}
	steps := []step{
		{name: "landing zone", condition: meshv1.LandingZoneReadyCondition, run: r.reconcileLandingZone},
		{name: "namespace", condition: meshv1.NamespaceReadyCondition, run: r.reconcileNamespace, waitsFor: waitsForZone},
		{name: "role bindings", condition: meshv1.RoleBindingsReadyCondition, run: r.reconcileRoleBindings, waitsFor: waitsForNamespace},
		{name: "resource quota", condition: meshv1.BaselineReadyCondition, run: r.reconcileQuota, waitsFor: waitsForBaseline},
		{name: "limit range", condition: meshv1.BaselineReadyCondition, run: r.reconcileLimitRange, waitsFor: waitsForBaseline},
		{name: "network policies", condition: meshv1.BaselineReadyCondition, run: r.reconcileNetworkPolicies, waitsFor: waitsForBaseline},
	}
	var errs []error
	for _, st := range steps {
		if st.waitsFor != nil {
			if reason := st.waitsFor(s); reason != "" {
				s.out.wait(st.condition, reason)
				continue
			}
		}
		s.out.start(st.condition)
		err := st.run(ctx, s)
		s.out.finish(st.condition, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
			if st.condition == meshv1.LandingZoneReadyCondition {
				// Every later step depends on the zone.
				s.zoneFailed = true
			}
		}
	}
	return s.out, errors.Join(errs...)
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
