//go:build scale

package benchmark

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// BenchmarkMeteringPass is part of `make bench-scale`: the metering binary,
// under a token bound to the seed's meshfed-metering rules, its checkpoint
// Role and the namespaces role of project attribution, meters 10,000 and then 50,000 Running pods in 1,000
// namespaces through a real API server. The floor is a bare paged LIST of
// the same pods under the same identity (pages of 500, protobuf, decoded
// into a PodList). Reported: the mean pass time (from the binary's
// meshstack_metering_pass_duration_seconds), the floor, their ratio, and the
// binary's peak RSS, which must not grow with the pods.
func BenchmarkMeteringPass(b *testing.B) {
	ctx := context.Background()
	watchTimeout = 30 * time.Minute
	fw, err := framework.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = fw.Stop() }()
	sa, err := fw.CreateServiceAccount(ctx, "meshcloud", "meshfed-metering", "config/rbac/metering/role.yaml",
		"config/rbac/metering-namespaces/role.yaml")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := client.New(fw.Config, client.Options{Scheme: operator.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(sa.Config)
	cfg.AcceptContentTypes, cfg.ContentType = "application/vnd.kubernetes.protobuf", "application/vnd.kubernetes.protobuf"
	cfg.QPS = -1
	lister, err := client.New(cfg, client.Options{Scheme: operator.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	bin := buildBinary(b)
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	data, err := fw.TokenKubeconfig(ctx, sa, 24*3600)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		b.Fatal(err)
	}

	const namespaces = 1000
	parallel(b, namespaces, func(i int) error {
		// Namespaces as the replicator marks them, so that every pass
		// attributes them to their project (the chart's default).
		return admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("cust%d-proj", i),
			Labels: map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue, meshv1.LabelCustomer: fmt.Sprintf("cust%d", i),
				meshv1.LabelProject: "proj", meshv1.LabelLandingZone: "standard", meshv1.TagLabelPrefix + "env": "prod"},
			Annotations: map[string]string{meshv1.AnnotationMeshProject: fmt.Sprintf("cust%d-proj", i)},
		}})
	})
	created := 0
	for b.Loop() {
		for _, pods := range []int{10_000, 50_000} {
			parallel(b, pods-created, func(i int) error { return createRunningPod(ctx, admin, created+i, namespaces) })
			created = pods

			// The floor: bare paged LISTs of every pod.
			const lists = 5
			start := time.Now()
			for range lists {
				token := ""
				for {
					page := &corev1.PodList{}
					if err := lister.List(ctx, page, client.Limit(500), client.Continue(token)); err != nil {
						b.Fatal(err)
					}
					if token = page.Continue; token == "" {
						break
					}
				}
			}
			floor := time.Since(start) / lists

			metricsAddr := freeAddr(b)
			proc, err := framework.StartProcess(bin, filepath.Join(b.TempDir(), "metering.log"), "--kubeconfig="+kubeconfig,
				"--components=metering", "--leader-election-namespace=meshcloud", "--metering-output=/dev/null",
				"--metering-interval=5s", "--metering-window=1h", "--metrics-secure=false", "--metrics-bind-address="+metricsAddr,
				"--health-probe-bind-address=0", "--zap-log-level=error")
			if err != nil {
				b.Fatal(err)
			}
			url := "http://" + metricsAddr + "/metrics"
			deadline := time.Now().Add(10 * time.Minute)
			var count, sum float64
			for count < 5 {
				if time.Now().After(deadline) {
					b.Fatal("the meter made fewer than 5 passes in 10 minutes")
				}
				time.Sleep(time.Second)
				count, _ = scrapeGauge(ctx, url, "meshstack_metering_pass_duration_seconds_count")
				sum, _ = scrapeGauge(ctx, url, "meshstack_metering_pass_duration_seconds_sum")
			}
			rss, _ := peakRSS(b, proc.Pid())
			_ = proc.Stop()
			pass := sum / count
			b.ReportMetric(pass, fmt.Sprintf("pass-s@%dk", pods/1000))
			b.ReportMetric(floor.Seconds(), fmt.Sprintf("list-s@%dk", pods/1000))
			b.ReportMetric(pass/floor.Seconds(), fmt.Sprintf("pass/list@%dk", pods/1000))
			b.ReportMetric(float64(rss)/(1<<20), fmt.Sprintf("peak-RSS-MiB@%dk", pods/1000))
			fmt.Printf("Metering %d pods in %d namespaces: pass %.2f s (mean of %.0f), bare paged LIST %.2f s, "+
				"ratio %.2f (goal <= 1.2), peak RSS %.0f MiB\n",
				pods, namespaces, pass, count, floor.Seconds(), pass/floor.Seconds(), float64(rss)/(1<<20))
		}
	}
}

// createRunningPod creates pod i and marks it Running, as a kubelet would.
func createRunningPod(ctx context.Context, c client.Client, i, namespaces int) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("cust%d-proj", i%namespaces), Name: fmt.Sprintf("pod-%d", i)},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			}}},
		},
	}
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now().Add(-time.Hour)}}
	return c.Status().Update(ctx, pod)
}
