package replicator

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

var projectsDesc = prometheus.NewDesc("meshstack_meshprojects",
	"MeshProjects by the status and reason of their Ready condition (ready=Unknown and no reason before the first pass), from the informer cache.",
	[]string{"ready", "reason"}, nil)

// projectStates counts MeshProjects by state at scrape time, from the
// informer cache: no API request, and nothing to keep up to date.
type projectStates struct {
	// projects is the cache of the replicator started last in this process.
	projects atomic.Pointer[cachedProjects]
}

var projectStateCollector = &projectStates{}

func init() { metrics.Registry.MustRegister(projectStateCollector) }

func (c *projectStates) Describe(ch chan<- *prometheus.Desc) { ch <- projectsDesc }

func (c *projectStates) Collect(ch chan<- prometheus.Metric) {
	// A cache that has not synced yet answers nothing rather than a
	// partial count.
	projects := c.projects.Load()
	if projects == nil || !projects.synced() {
		return
	}
	type state struct{ ready, reason string }
	counts := map[state]float64{}
	for _, project := range projects.all() {
		s := state{ready: "Unknown"}
		if c := meta.FindStatusCondition(project.Status.Conditions, meshv1.ReadyCondition); c != nil {
			s = state{ready: string(c.Status), reason: c.Reason}
		}
		counts[s]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(projectsDesc, prometheus.GaugeValue, n, s.ready, s.reason)
	}
}
