package metering

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshcloud/meshstack-operator/internal/metering/attribution"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// TestAttributionSurvivesTheCheckpoint checks that a window's attribution
// is kept with it, so that a window delivered again after a restart names
// whom it named the first time, and that windows of a release before
// attribution keep that release's records.
func TestAttributionSurvivesTheCheckpoint(t *testing.T) {
	shop := &attribution.Attribution{By: AttributedByProject, Customer: "acme", Project: "shop", LandingZone: "prod", Tags: map[string]string{"env": "prod"}}
	w := usage.Window{Start: t0, End: t0.Add(time.Hour), Usage: map[string]*usage.Usage{
		"acme-shop":   {PodSeconds: 1, Attribution: shop},
		"kube-system": {PodSeconds: 2, Attribution: attribution.Unattributed},
		"acme-old":    {PodSeconds: 3}, // counted before attribution
	}}
	data, err := checkpoint.Encode(&checkpoint.Checkpoint{Window: time.Hour, LastPass: t0.Add(time.Hour), Pending: []usage.Window{w}})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	before, after := usage.WindowRecords("eu-1", w.Start, w.End, w.Usage), usage.WindowRecords("eu-1", cp.Pending[0].Start, cp.Pending[0].End, cp.Pending[0].Usage)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("records before and after the checkpoint (-before +after):\n%s", diff)
	}
	byNS := map[string]usage.Record{}
	for _, r := range after {
		byNS[r.Namespace] = r
	}
	if r := byNS["acme-shop"]; r.CustomerIdentifier != "acme" || r.ProjectIdentifier != "shop" || r.LandingZone != "prod" ||
		r.AttributedBy != AttributedByProject || r.Tags["env"] != "prod" {
		t.Errorf("acme-shop: %+v", r)
	}
	if r := byNS["kube-system"]; r.CustomerIdentifier != "" || r.ProjectIdentifier != "" || r.AttributedBy != "" {
		t.Errorf("kube-system is attributed: %+v", r)
	}
	if r := byNS["acme-old"]; r.CustomerIdentifier != "acme" || r.ProjectIdentifier != "old" || r.AttributedBy != "" {
		t.Errorf("a window from before attribution lost its name-split identifiers: %+v", r)
	}
}

// TestExcludeUnmanaged checks that --metering-unmanaged-namespaces=exclude
// drops the usage of namespaces that are nobody's, in the pass.
func TestExcludeUnmanaged(t *testing.T) {
	pods := &fakePods{}
	pods.set(newPod("acme-shop", "web", startedAt(t0.Add(-time.Hour))), newPod("kube-system", "dns", startedAt(t0.Add(-time.Hour))))
	r := &run{Meter: &Meter{Reader: pods, PageSize: 10, Attribution: AttributionNamespaceName, UnmanagedNamespaces: UnmanagedExclude,
		Resources: []string{ResourcePods}}, agg: usage.NewAggregator(time.Hour, t0)}
	p, err := r.list(context.Background(), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r.agg.Commit(p)
	closed := r.agg.TakeClosed()
	if len(closed) != 1 || len(closed[0].Usage) != 1 || closed[0].Usage["acme-shop"] == nil {
		t.Fatalf("closed windows %+v, want one with acme-shop alone", closed)
	}
}
