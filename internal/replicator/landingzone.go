package replicator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// EffectiveLandingZone is the zone a project is in: the one it names, or
// the default.
func EffectiveLandingZone(project *meshv1.MeshProject, defaultZone string) string {
	if project.Spec.LandingZone != "" {
		return project.Spec.LandingZone
	}
	return defaultZone
}

// projectsInZone maps a MeshLandingZone to the projects in it.
func (r *MeshProjectReconciler) projectsInZone(ctx context.Context, zone client.Object) []reconcile.Request {
	names, err := r.projects.namesInZone(zone.GetName())
	if err != nil {
		log.FromContext(ctx).Error(err, "Mapping a landing zone to its projects", "meshLandingZone", zone.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, len(names))
	for i, name := range names {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}
	}
	return reqs
}

// reconcileLandingZone decides which zone the pass applies and how the
// project's roles map to ClusterRoles. A zone that cannot be applied (not
// permitted, missing, disabled for a newcomer) blocks Ready. A project
// that has a namespace keeps it and its RoleBindings converge (through the
// mapping of the zone the project was in, else --role-mapping), while the
// zone objects the namespace has are left as they are. A project that has
// no namespace yet gets none until its zone can be applied: a namespace
// without its zone's quota, limits and network policies would be open.
func (r *MeshProjectReconciler) reconcileLandingZone(ctx context.Context, s *scope) error {
	s.mapping = r.RoleMapping.mapping()
	if invalid := s.project.Spec.InvalidQuantities; len(invalid) > 0 {
		s.out.block(meshv1.ReasonInvalidQuantity, "values that are not quantities are left out until they are fixed (the landing zone's own values apply): %s",
			strings.Join(invalid, ", "))
	}
	name := EffectiveLandingZone(s.project, r.DefaultLandingZone)
	if !r.LandingZonesPermitted {
		if name != "" || len(s.project.Spec.Quota) > 0 {
			s.zoneHeld = true
			s.out.block(meshv1.ReasonLandingZonesNotPermitted, "landing zones are not permitted: the operator's identity lacks the landing-zone rights "+
				"(ClusterRole meshstack-operator-landing-zones, chart value landingZones.enabled), so landing zone %q and spec.quota are not applied", name)
		}
		if name == "" {
			s.out.landingZone = new(string)
		}
		return nil
	}
	if name == "" {
		if previous := s.project.Status.LandingZone; previous != "" {
			// Leaving a zone for none would drop its quota, limits and
			// network policies: the objects stay as they are.
			s.zoneHeld = true
			s.out.block(meshv1.ReasonLandingZoneRequired, "spec.landingZone is empty and there is no default landing zone: the namespace keeps "+
				"the baseline of landing zone %q as it is until the project names another zone", previous)
			return r.keepPreviousMapping(ctx, s)
		}
		s.baseline = true
		s.out.landingZone = new(string)
		return nil
	}
	zone := &meshv1.MeshLandingZone{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, zone); err != nil {
		if apierrors.IsNotFound(err) {
			s.out.block(meshv1.ReasonLandingZoneNotFound, "landing zone %q does not exist; the project gets its baseline once it is created%s", name, s.waitForZone())
			return r.keepPreviousMapping(ctx, s)
		}
		return fmt.Errorf("reading MeshLandingZone %s: %w", name, err)
	}
	if zone.Spec.Disabled && s.project.Status.LandingZone != zone.Name {
		s.out.block(meshv1.ReasonLandingZoneDisabled, "landing zone %q is disabled: it keeps its projects but takes no new ones; choose another zone%s", name, s.waitForZone())
		return r.keepPreviousMapping(ctx, s)
	}
	if invalid := zone.Spec.InvalidQuantities; len(invalid) > 0 {
		s.out.block(meshv1.ReasonInvalidQuantity, "landing zone %q holds values that are not quantities, left out until it is fixed: %s", zone.Name, strings.Join(invalid, ", "))
	}
	s.zone, s.baseline = zone, true
	s.out.landingZone = &zone.Name
	if len(zone.Spec.RoleMappings) > 0 {
		s.mapping = zoneMapping(zone.Name, zone.Spec.RoleMappings)
	}
	return nil
}

// waitForZone holds back the namespace of a project that has none yet,
// while its zone cannot be applied, and says so for the message.
func (s *scope) waitForZone() string {
	s.zoneHeld = true
	if s.project.Status.NamespaceUID != "" || s.project.Status.Namespace != "" {
		return ""
	}
	s.withoutNamespace = true
	return "; until then no namespace is created"
}

// keepPreviousMapping maps roles through the zone the project was in
// (status.landingZone) while the zone it names cannot be applied, so that a
// typo in spec.landingZone takes nobody's access away.
func (r *MeshProjectReconciler) keepPreviousMapping(ctx context.Context, s *scope) error {
	previous := s.project.Status.LandingZone
	if previous == "" {
		return nil
	}
	zone := &meshv1.MeshLandingZone{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: previous}, zone); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading MeshLandingZone %s: %w", previous, err)
	}
	if len(zone.Spec.RoleMappings) > 0 {
		s.mapping = zoneMapping(zone.Name, zone.Spec.RoleMappings)
	}
	return nil
}

// MeshLandingZoneReconciler keeps a zone's status (how many projects, and
// which, are in it) and its finalizer, which holds a deleted zone until no
// project is in it any more.
//
// Its RBAC markers are in the landingzones package.
type MeshLandingZoneReconciler struct {
	Client client.Client
	// DefaultLandingZone is the operator's --default-landing-zone.
	DefaultLandingZone string

	projects *cachedProjects
}

// SetupWithManager registers the reconciler.
func (z *MeshLandingZoneReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	projects, err := cachedProjectsOf(ctx, mgr, z.DefaultLandingZone)
	if err != nil {
		return err
	}
	z.projects = projects
	return ctrl.NewControllerManagedBy(mgr).
		Named("meshlandingzone").
		For(&meshv1.MeshLandingZone{}).
		Watches(&meshv1.MeshProject{}, z.zonesOfProject()).
		Complete(z)
}

// zonesOfProject enqueues the zone a project is in when it is created or
// deleted, and the old and the new zone when it moves.
func (z *MeshLandingZoneReconciler) zonesOfProject() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
		if zone := EffectiveLandingZone(obj.(*meshv1.MeshProject), z.DefaultLandingZone); zone != "" {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKey{Name: zone}})
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if EffectiveLandingZone(e.ObjectOld.(*meshv1.MeshProject), z.DefaultLandingZone) != EffectiveLandingZone(e.ObjectNew.(*meshv1.MeshProject), z.DefaultLandingZone) {
				add(q, e.ObjectOld)
				add(q, e.ObjectNew)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q, e.Object)
		},
	}
}

// Reconcile counts the zone's projects into its status and adds or, once
// a deleted zone has no project left, removes its finalizer.
func (z *MeshLandingZoneReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	zone := &meshv1.MeshLandingZone{}
	if err := z.Client.Get(ctx, req.NamespacedName, zone); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("meshLandingZone", klog.KObj(zone)))

	names, err := z.projects.namesInZone(zone.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	slices.Sort(names)

	if zone.DeletionTimestamp.IsZero() {
		if err := patchFinalizer(ctx, z.Client, zone, controllerutil.AddFinalizer); err != nil {
			return ctrl.Result{}, err
		}
	} else if len(names) == 0 {
		log.FromContext(ctx).Info("Releasing deleted landing zone: no project is in it")
		return ctrl.Result{}, patchFinalizer(ctx, z.Client, zone, controllerutil.RemoveFinalizer)
	} else {
		log.FromContext(ctx).Info("Keeping deleted landing zone while projects are in it", "projects", len(names),
			"first", strings.Join(names[:min(len(names), 5)], ","))
	}

	before := zone.Status.DeepCopy()
	zone.Status.Projects = int32(len(names))
	zone.Status.ProjectNames = names[:min(len(names), meshv1.MaxListedProjects)]
	if len(zone.Status.ProjectNames) == 0 {
		zone.Status.ProjectNames = nil
	}
	zone.Status.ObservedGeneration = zone.Generation
	if equality.Semantic.DeepEqual(before, &zone.Status) {
		return ctrl.Result{}, nil
	}
	original := zone.DeepCopy()
	original.Status = *before
	if err := z.Client.Status().Patch(ctx, zone, client.MergeFrom(original)); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("updating status of landing zone %s: %w", zone.Name, err)
	}
	return ctrl.Result{}, nil
}

// patchFinalizer adds or removes the landing zone finalizer if that
// changes anything. The optimistic lock keeps a JSON merge patch of the
// whole list from dropping a finalizer someone else added meanwhile.
func patchFinalizer(ctx context.Context, c client.Client, zone *meshv1.MeshLandingZone, change func(client.Object, string) bool) error {
	original := zone.DeepCopy()
	if !change(zone, meshv1.LandingZoneFinalizer) {
		return nil
	}
	if err := c.Patch(ctx, zone, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("updating the finalizer of landing zone %s: %w", zone.Name, err)
	}
	return nil
}
