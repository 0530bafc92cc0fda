package replicator

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// indexLandingZone indexes cached MeshProjects by the landing zone they are
// in (EffectiveLandingZone).
const indexLandingZone = "meshcloud.io/landing-zone"

// cachedProjects reads the MeshProjects in the informer cache in place. A
// cache List copies every project into a new slice even when it does not
// deep-copy them: at 10,000 projects that is about 5 MB of garbage for each
// zone count, metrics scrape or ClusterRole event, and at convergence the
// zone count runs after nearly every project. What it returns is the
// cache's own objects: read them, never change them.
type cachedProjects struct {
	informer toolscache.SharedIndexInformer
	indexer  toolscache.Indexer
}

// cachedProjectsOf returns the view of mgr's cached MeshProjects, indexed by
// landing zone. Both controllers ask for it; the index is added once.
func cachedProjectsOf(ctx context.Context, mgr ctrl.Manager, defaultZone string) (*cachedProjects, error) {
	informer, err := mgr.GetCache().GetInformer(ctx, &meshv1.MeshProject{})
	if err != nil {
		return nil, fmt.Errorf("getting the MeshProject informer: %w", err)
	}
	shared, ok := informer.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("the MeshProject informer (%T) has no indexer", informer)
	}
	if _, ok := shared.GetIndexer().GetIndexers()[indexLandingZone]; !ok {
		err := shared.AddIndexers(toolscache.Indexers{indexLandingZone: func(obj any) ([]string, error) {
			project, ok := obj.(*meshv1.MeshProject)
			if !ok {
				return nil, fmt.Errorf("indexing a %T as a MeshProject", obj)
			}
			if zone := EffectiveLandingZone(project, defaultZone); zone != "" {
				return []string{zone}, nil
			}
			return nil, nil
		}})
		if err != nil {
			return nil, fmt.Errorf("indexing MeshProjects by landing zone: %w", err)
		}
	}
	return &cachedProjects{informer: shared, indexer: shared.GetIndexer()}, nil
}

// synced says whether the cache holds every project yet.
func (c *cachedProjects) synced() bool { return c.informer.HasSynced() }

// all returns every cached project.
func (c *cachedProjects) all() []*meshv1.MeshProject {
	return asProjects(c.indexer.List())
}

// inZone returns the cached projects in a landing zone.
func (c *cachedProjects) inZone(zone string) ([]*meshv1.MeshProject, error) {
	objs, err := c.indexer.ByIndex(indexLandingZone, zone)
	if err != nil {
		return nil, fmt.Errorf("listing the MeshProjects of landing zone %s: %w", zone, err)
	}
	return asProjects(objs), nil
}

// namesInZone returns the names of the projects in a landing zone, the keys
// of a cluster-scoped object's cache entries, without touching the
// projects.
func (c *cachedProjects) namesInZone(zone string) ([]string, error) {
	names, err := c.indexer.IndexKeys(indexLandingZone, zone)
	if err != nil {
		return nil, fmt.Errorf("listing the MeshProjects of landing zone %s: %w", zone, err)
	}
	return names, nil
}

func asProjects(objs []any) []*meshv1.MeshProject {
	projects := make([]*meshv1.MeshProject, 0, len(objs))
	for _, obj := range objs {
		if project, ok := obj.(*meshv1.MeshProject); ok {
			projects = append(projects, project)
		}
	}
	return projects
}
