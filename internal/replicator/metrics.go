package replicator

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

var projectsDesc = prometheus.NewDesc("meshstack_meshprojects",
	"MeshProjects by the status and reason of their Ready condition (ready=Unknown and no reason before the first pass), from the informer cache.",
	[]string{"ready", "reason"}, nil)

// projectStates counts MeshProjects by state at scrape time, from the
// informer cache: no API request, and nothing to keep up to date.
type projectStates struct {
	// reader is the cache of the replicator started last in this process.
	reader atomic.Pointer[client.Reader]
}

var projectStateCollector = &projectStates{}

func init() { metrics.Registry.MustRegister(projectStateCollector) }

func (c *projectStates) Describe(ch chan<- *prometheus.Desc) { ch <- projectsDesc }

func (c *projectStates) Collect(ch chan<- prometheus.Metric) {
	reader := c.reader.Load()
	if reader == nil {
		return
	}
	// A cache that has not synced yet answers nothing rather than fail the
	// whole scrape.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var projects meshv1.MeshProjectList // read only, so not copied at every scrape
	if err := (*reader).List(ctx, &projects, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	type state struct{ ready, reason string }
	counts := map[state]float64{}
	for i := range projects.Items {
		s := state{ready: "Unknown"}
		if c := meta.FindStatusCondition(projects.Items[i].Status.Conditions, ConditionReady); c != nil {
			s = state{ready: string(c.Status), reason: c.Reason}
		}
		counts[s]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(projectsDesc, prometheus.GaugeValue, n, s.ready, s.reason)
	}
}
