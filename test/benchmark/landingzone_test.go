package benchmark

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// zoneProjects is how many projects one zone edit reaches:
// BENCH_ZONE_PROJECTS, 1000 when unset.
func zoneProjects(b *testing.B) int {
	n := 1000
	if s := os.Getenv("BENCH_ZONE_PROJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("BENCH_ZONE_PROJECTS=%q: want a positive number", s)
		}
	}
	return n
}

// BenchmarkZoneEdit times how long one edit of a MeshLandingZone (its
// ResourceQuota's pods limit) takes to reach the ResourceQuota of every one
// of N projects in the zone (BENCH_ZONE_PROJECTS, default 1000), with the
// operator under its least-privilege identity and default flags.
//
// The floor is the same writes made directly: before the operator starts,
// the benchmark updates N ResourceQuotas itself, as the operator's
// ServiceAccount with its rate limits and as many parallel workers. Reported:
// seconds for each, operator/direct, and the operator's write requests per
// project per edit (1 is the minimum: the quota's update).
func BenchmarkZoneEdit(b *testing.B) {
	ctx := context.Background()
	n := zoneProjects(b)
	env := startEnv(b, ctx)
	sa, opts, direct, admin := env.sa, env.opts, env.direct, env.admin

	// The floor: N ResourceQuotas the operator does not manage, updated
	// directly.
	quotas := make([]*corev1.ResourceQuota, n)
	parallel(b, n, func(i int) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%d", i)}}
		if err := admin.Create(ctx, ns); err != nil {
			return err
		}
		quotas[i] = &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: replicator.ResourceQuotaName, Namespace: ns.Name},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}}}
		return admin.Create(ctx, quotas[i])
	})
	start := time.Now()
	parallel(b, n, func(i int) error {
		quotas[i].Spec.Hard[corev1.ResourcePods] = resource.MustParse("101")
		return direct.Update(ctx, quotas[i])
	})
	directTime := time.Since(start)

	running, err := framework.StartManager(sa.Config, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := running.Stop(); err != nil {
			b.Errorf("the manager stopped with %v", err)
		}
	}()
	zone := &meshv1.MeshLandingZone{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: meshv1.MeshLandingZoneSpec{
			NamespaceLabels: map[string]meshv1.LabelValue{"pod-security.kubernetes.io/enforce": "baseline"},
			ResourceQuota:   &meshv1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}},
			LimitRange: &meshv1.LimitRangeSpec{Limits: []meshv1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Default: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
			NetworkPolicies: []meshv1.LandingZoneNetworkPolicy{{Name: "default-deny-ingress",
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}},
		},
	}
	if err := admin.Create(ctx, zone); err != nil {
		b.Fatal(err)
	}
	wait := watchReady(b, ctx, admin, "z", n)
	parallel(b, n, func(i int) error {
		p := meshProject(fmt.Sprintf("z%d", i))
		p.Spec.LandingZone = zone.Name
		return admin.Create(ctx, p)
	})
	wait()

	var edit time.Duration
	var writes int64
	for i := 0; b.Loop(); i++ {
		pods := fmt.Sprint(200 + i)
		wait := watchQuotas(b, ctx, admin, zone.Name, "z", pods, n)
		if err := admin.Get(ctx, client.ObjectKeyFromObject(zone), zone); err != nil {
			b.Fatal(err)
		}
		before := running.Writes()
		start := time.Now()
		zone.Spec.ResourceQuota.Hard[corev1.ResourcePods] = resource.MustParse(pods)
		if err := admin.Update(ctx, zone); err != nil {
			b.Fatal(err)
		}
		wait()
		edit += time.Since(start)
		writes += running.Writes() - before
	}
	perOp := edit.Seconds() / float64(b.N)
	b.ReportMetric(float64(n), "projects")
	b.ReportMetric(directTime.Seconds(), "direct-s")
	b.ReportMetric(perOp, "operator-s/op")
	b.ReportMetric(perOp/directTime.Seconds(), "operator/direct")
	b.ReportMetric(float64(writes)/float64(b.N*n), "operator-writes/project")
}

// watchQuotas waits until the ResourceQuotas of n namespaces of zone whose
// names start with prefix allow pods pods.
func watchQuotas(b *testing.B, ctx context.Context, c client.WithWatch, zone, prefix, pods string, n int) (wait func()) {
	want := resource.MustParse(pods)
	return watchUntil(b, ctx, c, &corev1.ResourceQuotaList{}, []client.ListOption{client.MatchingLabels{meshv1.LabelLandingZone: zone}}, n,
		"the zone edit did not reach every project",
		func(obj client.Object) (key string, counts, reached bool) {
			q, ok := obj.(*corev1.ResourceQuota)
			if !ok || !strings.HasPrefix(q.Namespace, prefix) {
				return "", false, false
			}
			got := q.Spec.Hard[corev1.ResourcePods]
			return q.Namespace, true, got.Cmp(want) == 0
		})
}
